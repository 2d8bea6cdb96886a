//! Rockchip MPP (Media Process Platform) FFI, written by hand from MPP's public headers: the
//! types, constants and functions an H.264 encoder needs.
//!
//! No Rust bindings for MPP are published, and linking would make every build need the
//! library. Here the library is opened at run time ([`Mpp::load`], `librockchip_mpp.so.1` then
//! `librockchip_mpp.so`), so a program built with this crate builds and runs on any Linux
//! machine, and only [`Mpp::load`] fails (with [`LoadError`]) where MPP is absent.
//!
//! Everything here is `unsafe` to call and mirrors the C API one to one; the safe encoder lives
//! in the `sfu` crate (`capture::mpp`). Layout tests below pin every struct's size and field
//! offsets to the C definitions for LP64 Linux (x86_64, aarch64).
// FFI bindings: the crate is nothing but unsafe declarations and calls (workspace lints).
#![allow(unsafe_code)]

mod library;
mod types;

pub use library::{Functions, LIBRARY_NAMES, LoadError, Mpp, TAG};
pub use types::*;

#[cfg(test)]
mod tests;
