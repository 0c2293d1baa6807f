"""setup.py — the ipcf Python package (pure Python: cffi in ABI mode loads
the installed C library libipcf.so.1 at import; nothing is compiled).

Installs offline from the tree with Debian's setuptools and cffi:
    python3 -m pip install --no-index --no-build-isolation ./python
(in a venv made with --system-site-packages, or with --target DIR).
"""
from setuptools import setup

setup(
    name="ipcf",
    version="1.4",
    description="Python binding of ipcf, the interprocess communication facility",
    license="See the ipcf source tree",
    packages=["ipcf"],
    python_requires=">=3.9",
    install_requires=["cffi>=1.12"],
)
