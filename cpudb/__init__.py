"""cpudb: choose the QEMU CPU model and extra flags that every host of a KVM pool can run."""

__version__ = "0.1.0"

__all__ = ["__version__"]
