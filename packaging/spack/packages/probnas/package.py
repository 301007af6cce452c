# probnas's Spack package. This folder is a Spack repository:
#
#   spack repo add <probnas clone>/packaging/spack
#   spack install probnas                 # CPU; +cuda cuda_arch=90 +nccl for GPU nodes
#   spack load probnas  (or: module load probnas, from Spack's generated module files)
#
# The project has no public release tarballs yet, so the package fetches with git: from
# $PROBNAS_GIT when set (your site's mirror, or file:///path/to/a/clone), else from the clone this
# file sits in (packaging/spack/packages/probnas/ of it), else from ~/probnas. In a Spack environment,
# `spack develop probnas@main` builds a working clone without fetching at all.

import os

from spack.package import *


def _default_git():
    """The clone this package file belongs to, as a file:// URL; for a copy of the file outside a
    clone, a clone at ~/probnas."""
    here = os.path.dirname(os.path.realpath(__file__))
    clone = os.path.normpath(os.path.join(here, "..", "..", "..", ".."))
    if os.path.isfile(os.path.join(clone, "CMakeLists.txt")) and os.path.isdir(os.path.join(clone, "src")):
        return "file://" + clone
    return "file://" + os.path.join(os.path.expanduser("~"), "probnas")


class Probnas(CMakePackage, CudaPackage):
    """probnas: probabilistic neural architecture search (DrNAS, DARTS, GDAS, PGNAS, PARSEC,
    GibbsNAS and random search on the NAS-Bench-201, DARTS and multi-branch spaces) as an MPI batch
    application for clusters: the same search on any number of ranks, and runs that resume exactly
    from HDF5 checkpoints after preemption or a time limit."""

    git = os.environ.get("PROBNAS_GIT") or _default_git()

    version("main", branch="main")

    variant("nccl", default=True, when="+cuda", description="Reduce CUDA gradients between ranks with NCCL")
    variant("bench", default=False, description="Build and install the benchmarks (libexec/probnas)")
    variant(
        "libtorch",
        default="none",
        values=lambda x: True,
        description="A LibTorch prefix (holding share/cmake/Torch) to build against instead of py-torch",
    )

    depends_on("cmake@3.25:", type="build")
    depends_on("pkgconfig", type="build")
    depends_on("mpi")
    depends_on("hdf5")
    depends_on("boost+program_options")
    depends_on("nlohmann-json@3.10:")
    depends_on("libjpeg-turbo")
    depends_on("zlib-api")
    depends_on("googletest", type="test")

    # LibTorch: py-torch's C++ library (its CMake files are found through py-torch's prefix paths),
    # unless libtorch=<prefix> names one.
    depends_on("py-torch~cuda", when="libtorch=none ~cuda")
    depends_on("py-torch+cuda", when="libtorch=none +cuda")
    for _arch in CudaPackage.cuda_arch_values:
        depends_on(f"py-torch+cuda cuda_arch={_arch}", when=f"libtorch=none +cuda cuda_arch={_arch}")
    depends_on("nccl", when="+nccl")

    def cmake_args(self):
        spec = self.spec
        args = [
            self.define("PROBNAS_TESTS", self.run_tests),
            self.define_from_variant("PROBNAS_BENCH", "bench"),
            self.define("PROBNAS_CUDA", "ON" if spec.satisfies("+cuda") else "OFF"),
            self.define("PROBNAS_NCCL", "ON" if spec.satisfies("+cuda +nccl") else "OFF"),
        ]
        libtorch = spec.variants["libtorch"].value
        if libtorch != "none":
            args.append(self.define("Torch_DIR", join_path(libtorch, "share", "cmake", "Torch")))
        return args

    def check(self):
        """The unit tests only: the integration tests start Slurm daemons, mount file systems and
        run mpirun jobs, which a package build must not do."""
        with working_dir(self.build_directory):
            ctest("-L", "unit", "--output-on-failure")

    def setup_run_environment(self, env):
        # The shipped configs (with the NAS-Bench-201 table) and the Slurm scripts.
        env.set("PROBNAS_HOME", self.prefix.share.probnas)

    @run_after("install")
    @on_package_attributes(run_tests=True)
    def check_installed(self):
        probnas = Executable(self.prefix.bin.probnas)
        probnas("--version")
