"""The one compiled piece: the int8 rows kernel (search_service/engine/native/rowdot.c), loaded with ctypes.

Optional: where no C compiler is at hand the install goes on without it, and the engine scores rows with SimSIMD
and MLAS as before (search_service/engine/native_rows.py says which at start-up). Everything else is in
pyproject.toml."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "search_service.engine._rowdot",
            sources=["search_service/engine/native/rowdot.c"],
            # -fno-wrapv after Python's own -fwrapv, which slowed the kernel's loops (8 queries, 1M rows: 27 -> 23 ms);
            # loops aligned to 64 bytes: a function added or moved shifted the others' loops, up to +18 % (rowdot.c)
            extra_compile_args=["-O3", "-fno-wrapv", "-falign-loops=64"],
            optional=True,
        )
    ]
)
