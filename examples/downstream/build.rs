//! Links this crate's binaries with libtorch: dlkit passes torch's `lib/` folder on as
//! `DEP_DLKIT_TORCH_LIB`; the run-time loader finds it through the rpath (no LD_LIBRARY_PATH).

fn main() {
    let lib = std::env::var("DEP_DLKIT_TORCH_LIB").expect("dlkit passes the libtorch folder on");
    println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
    if std::path::Path::new(&lib).join("libtorch_cuda.so").is_file() {
        // Keep libtorch_cuda (no symbol of it is referenced directly), so CUDA works on a GPU machine.
        println!("cargo:rustc-link-arg=-Wl,-L,{lib},--no-as-needed,-ltorch_cuda,--as-needed");
    }
}
