"""Build the Cython DSP core (cext/*.pyx) into the sensord package."""

from pathlib import Path

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup

DIRECTIVES = {
    "language_level": 3,
    "boundscheck": False,
    "wraparound": False,
    "cdivision": True,
    "initializedcheck": False,
}


def ext(pyx: Path) -> Extension:
    """One extension module sensord._<name> from cext/<name>.pyx."""
    return Extension(
        f"sensord._{pyx.stem}",
        [str(pyx)],
        include_dirs=[np.get_include(), "cext"],
        extra_compile_args=["-O3"],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
    )


setup(
    ext_modules=cythonize(
        [ext(p) for p in sorted(Path("cext").glob("*.pyx"))],
        compiler_directives=DIRECTIVES,
        include_path=["cext"],
    ),
)
