//! Class ids, image ids and dataset splits.

use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A class id, 0 … 65534 (HALCON's range).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "i64", into = "i64")]
pub struct ClassId(u16);

impl ClassId {
    /// Largest valid class id.
    pub const MAX: u16 = 65534;

    /// A class id.
    ///
    /// # Errors
    /// [`Error::ClassIdOutOfRange`] outside 0 … 65534.
    pub fn new(id: i64) -> Result<Self> {
        if (0..=i64::from(Self::MAX)).contains(&id) {
            Ok(Self(id as u16))
        } else {
            Err(Error::ClassIdOutOfRange(id))
        }
    }

    /// A class id from a constant; `None` above [`ClassId::MAX`].
    pub const fn from_u16(id: u16) -> Option<Self> {
        if id <= Self::MAX { Some(Self(id)) } else { None }
    }

    /// The id as an integer.
    pub fn get(self) -> u16 {
        self.0
    }
}

impl TryFrom<i64> for ClassId {
    type Error = Error;
    fn try_from(id: i64) -> Result<Self> {
        Self::new(id)
    }
}

impl From<ClassId> for i64 {
    fn from(id: ClassId) -> i64 {
        i64::from(id.0)
    }
}

impl fmt::Display for ClassId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A unique image id inside a dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default)]
#[serde(transparent)]
pub struct ImageId(pub u64);

impl fmt::Display for ImageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The split a sample belongs to: exactly `train`, `validation` or `test`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    /// Used to fit the model.
    Train,
    /// Used to choose the best model during training.
    Validation,
    /// Held out for the final evaluation.
    Test,
}

impl Split {
    /// All splits in their canonical order.
    pub const ALL: [Split; 3] = [Split::Train, Split::Validation, Split::Test];

    /// HALCON's name of the split.
    pub fn as_str(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Validation => "validation",
            Split::Test => "test",
        }
    }
}

impl fmt::Display for Split {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Split {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "train" => Ok(Split::Train),
            "validation" => Ok(Split::Validation),
            "test" => Ok(Split::Test),
            other => Err(Error::UnknownSplit(other.to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn class_id_range_is_halcons() {
        assert_eq!(ClassId::new(0).map(ClassId::get), Ok(0));
        assert_eq!(ClassId::new(65534).map(ClassId::get), Ok(65534));
        assert_eq!(ClassId::new(65535), Err(Error::ClassIdOutOfRange(65535)));
        assert_eq!(ClassId::new(-1), Err(Error::ClassIdOutOfRange(-1)));
    }

    #[test]
    fn split_names_round_trip() {
        for split in Split::ALL {
            assert_eq!(split.as_str().parse::<Split>(), Ok(split));
        }
        assert!("val".parse::<Split>().is_err());
    }
}
