//! What the operating system sees of the VM (Linux only).
