//! Loading librockchip_mpp at run time, so a binary built with this crate starts on any Linux box
//! and only the code that wants the hardware encoder needs the library.

use std::ffi::{c_char, c_int, c_void};
use std::path::PathBuf;

use libloading::Library;

use crate::types::*;

/// The names tried by [`Mpp::load`], in order: the versioned name the runtime package installs
/// (Debian/Ubuntu `librockchip-mpp1`, Rockchip BSP images), then the unversioned development
/// symlink (`librockchip-mpp-dev`, or a library built from source into /usr/local/lib).
pub const LIBRARY_NAMES: &[&str] = &["librockchip_mpp.so.1", "librockchip_mpp.so"];

/// Why the library could not be used.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// No candidate could be opened; each attempt with the loader's reason.
    #[error("Rockchip MPP library not found ({})", describe(.attempts))]
    NotFound { attempts: Vec<(String, String)> },
    /// The library opened but lacks a function this crate needs (too old, or not MPP at all).
    #[error("{library} is not a usable Rockchip MPP library: it has no symbol {symbol}")]
    MissingSymbol {
        library: String,
        symbol: &'static str,
    },
}

fn describe(attempts: &[(String, String)]) -> String {
    attempts
        .iter()
        .map(|(name, why)| format!("{name}: {why}"))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Declares the functions resolved at load time: one struct field per C function, filled by
/// [`Functions::resolve`], plus the list of their names.
macro_rules! functions {
    ($( $(#[$doc:meta])* fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)?; )*) => {
        /// The MPP C functions, as resolved from the library. Valid only while the [`Mpp`] that
        /// holds them is alive (it keeps the library loaded).
        #[derive(Clone, Copy)]
        pub struct Functions {
            $( $(#[$doc])* pub $name: unsafe extern "C" fn($($arg: $ty),*) $(-> $ret)?, )*
        }

        impl Functions {
            /// The C names this crate needs.
            pub const NAMES: &'static [&'static str] = &[$(stringify!($name)),*];

            /// Resolves every function.
            ///
            /// # Safety
            /// `lib` must be librockchip_mpp (or a library with the same C signatures under
            /// these names): the pointers are typed from the headers, not checked.
            unsafe fn resolve(lib: &Library, library: &str) -> Result<Self, LoadError> {
                Ok(Self {
                    $( $name: {
                        // SAFETY: the caller guarantees the symbol has this C signature; the
                        // pointer is copied out and stays valid while `lib` is loaded, which
                        // `Mpp` guarantees by owning `lib` alongside it.
                        let symbol = unsafe {
                            lib.get::<unsafe extern "C" fn($($ty),*) $(-> $ret)?>(
                                concat!(stringify!($name), "\0").as_bytes(),
                            )
                        };
                        *symbol.map_err(|_| LoadError::MissingSymbol {
                            library: library.to_owned(),
                            symbol: stringify!($name),
                        })?
                    }, )*
                })
            }
        }
    };
}

functions! {
    // rk_mpi.h
    /// Creates a context and returns its function table.
    fn mpp_create(ctx: *mut MppCtx, mpi: *mut *mut MppApi) -> MPP_RET;
    fn mpp_init(ctx: MppCtx, type_: MppCtxType, coding: MppCodingType) -> MPP_RET;
    fn mpp_destroy(ctx: MppCtx) -> MPP_RET;
    /// `MPP_OK` when this SoC can encode/decode `coding`.
    fn mpp_check_support_format(type_: MppCtxType, coding: MppCodingType) -> MPP_RET;

    // rk_venc_cfg.h
    fn mpp_enc_cfg_init(cfg: *mut MppEncCfg) -> MPP_RET;
    fn mpp_enc_cfg_deinit(cfg: MppEncCfg) -> MPP_RET;
    fn mpp_enc_cfg_set_s32(cfg: MppEncCfg, name: *const c_char, val: RK_S32) -> MPP_RET;
    fn mpp_enc_cfg_set_u32(cfg: MppEncCfg, name: *const c_char, val: RK_U32) -> MPP_RET;
    fn mpp_enc_cfg_get_s32(cfg: MppEncCfg, name: *const c_char, val: *mut RK_S32) -> MPP_RET;

    // mpp_frame.h
    fn mpp_frame_init(frame: *mut MppFrame) -> MPP_RET;
    fn mpp_frame_deinit(frame: *mut MppFrame) -> MPP_RET;
    fn mpp_frame_set_width(frame: MppFrame, width: RK_U32);
    fn mpp_frame_set_height(frame: MppFrame, height: RK_U32);
    fn mpp_frame_set_hor_stride(frame: MppFrame, hor_stride: RK_U32);
    fn mpp_frame_set_ver_stride(frame: MppFrame, ver_stride: RK_U32);
    fn mpp_frame_set_fmt(frame: MppFrame, fmt: MppFrameFormat);
    fn mpp_frame_set_pts(frame: MppFrame, pts: RK_S64);
    fn mpp_frame_set_eos(frame: MppFrame, eos: RK_U32);
    fn mpp_frame_set_buffer(frame: MppFrame, buffer: MppBuffer);
    fn mpp_frame_get_meta(frame: MppFrame) -> MppMeta;

    // mpp_packet.h
    fn mpp_packet_init(packet: *mut MppPacket, data: *mut c_void, size: usize) -> MPP_RET;
    fn mpp_packet_deinit(packet: *mut MppPacket) -> MPP_RET;
    fn mpp_packet_get_pos(packet: MppPacket) -> *mut c_void;
    fn mpp_packet_get_length(packet: MppPacket) -> usize;
    fn mpp_packet_set_length(packet: MppPacket, size: usize);
    fn mpp_packet_get_pts(packet: MppPacket) -> RK_S64;
    fn mpp_packet_get_flag(packet: MppPacket) -> RK_U32;
    fn mpp_packet_get_eos(packet: MppPacket) -> RK_U32;
    fn mpp_packet_has_meta(packet: MppPacket) -> RK_S32;
    fn mpp_packet_get_meta(packet: MppPacket) -> MppMeta;
    fn mpp_packet_is_partition(packet: MppPacket) -> RK_U32;
    fn mpp_packet_is_eoi(packet: MppPacket) -> RK_U32;

    // mpp_meta.h
    fn mpp_meta_get_s32(meta: MppMeta, key: MppMetaKey, val: *mut RK_S32) -> MPP_RET;
    fn mpp_meta_set_s32(meta: MppMeta, key: MppMetaKey, val: RK_S32) -> MPP_RET;

    // mpp_buffer.h (the header's convenience macros are methods of `Mpp`)
    fn mpp_buffer_group_get(
        group: *mut MppBufferGroup,
        type_: MppBufferType,
        mode: MppBufferMode,
        tag: *const c_char,
        caller: *const c_char,
    ) -> MPP_RET;
    fn mpp_buffer_group_put(group: MppBufferGroup) -> MPP_RET;
    fn mpp_buffer_group_limit_config(group: MppBufferGroup, size: usize, count: RK_S32) -> MPP_RET;
    fn mpp_buffer_get_with_tag(
        group: MppBufferGroup,
        buffer: *mut MppBuffer,
        size: usize,
        tag: *const c_char,
        caller: *const c_char,
    ) -> MPP_RET;
    fn mpp_buffer_import_with_tag(
        group: MppBufferGroup,
        info: *mut MppBufferInfo,
        buffer: *mut MppBuffer,
        tag: *const c_char,
        caller: *const c_char,
    ) -> MPP_RET;
    fn mpp_buffer_put_with_caller(buffer: MppBuffer, caller: *const c_char) -> MPP_RET;
    fn mpp_buffer_get_ptr_with_caller(buffer: MppBuffer, caller: *const c_char) -> *mut c_void;
    fn mpp_buffer_get_fd_with_caller(buffer: MppBuffer, caller: *const c_char) -> c_int;
    fn mpp_buffer_get_size_with_caller(buffer: MppBuffer, caller: *const c_char) -> usize;
}

/// The tag and caller strings MPP's buffer functions log with (the C macros pass the module
/// tag and `__FUNCTION__`).
pub const TAG: &std::ffi::CStr = c"r58";

/// A loaded librockchip_mpp and its functions.
pub struct Mpp {
    /// Resolved once at load; see [`Functions`].
    pub fns: Functions,
    /// The file that was opened.
    pub path: PathBuf,
    // Dropped last (fields drop in declaration order), after nothing can call `fns` any more.
    _lib: Library,
}

impl std::fmt::Debug for Mpp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mpp").field("path", &self.path).finish()
    }
}

impl Mpp {
    /// Opens the first of [`LIBRARY_NAMES`] the dynamic loader finds.
    pub fn load() -> Result<Self, LoadError> {
        Self::load_from(LIBRARY_NAMES)
    }

    /// Opens the first of `candidates` (file names searched the loader's way, or paths) that
    /// loads, and resolves every function from it.
    pub fn load_from<S: AsRef<str>>(candidates: &[S]) -> Result<Self, LoadError> {
        let mut attempts = Vec::new();
        for name in candidates {
            let name = name.as_ref();
            // SAFETY: opening a library runs its initializers. librockchip_mpp's only set up
            // its logging and buffer service state; a file under these names that is not MPP
            // is the system administrator's doing, as with any shared library.
            match unsafe { Library::new(name) } {
                Ok(lib) => {
                    // SAFETY: the library was opened under an MPP name; `resolve` types each
                    // symbol from the MPP headers.
                    let fns = unsafe { Functions::resolve(&lib, name) }?;
                    return Ok(Self {
                        fns,
                        path: PathBuf::from(name),
                        _lib: lib,
                    });
                }
                Err(e) => attempts.push((name.to_owned(), loader_reason(&e))),
            }
        }
        Err(LoadError::NotFound { attempts })
    }

    /// `mpp_buffer_group_get_internal(group, type)`: a group whose buffers MPP allocates.
    ///
    /// # Safety
    /// `group` must point to writable storage for one `MppBufferGroup`.
    pub unsafe fn buffer_group_get_internal(
        &self,
        group: *mut MppBufferGroup,
        type_: MppBufferType,
    ) -> MPP_RET {
        // SAFETY: forwarded from the caller; the strings are static and NUL-terminated.
        unsafe {
            (self.fns.mpp_buffer_group_get)(
                group,
                type_,
                MPP_BUFFER_INTERNAL,
                TAG.as_ptr(),
                TAG.as_ptr(),
            )
        }
    }

    /// `mpp_buffer_group_get_external(group, type)`: a group of buffers the caller imports.
    ///
    /// # Safety
    /// `group` must point to writable storage for one `MppBufferGroup`.
    pub unsafe fn buffer_group_get_external(
        &self,
        group: *mut MppBufferGroup,
        type_: MppBufferType,
    ) -> MPP_RET {
        // SAFETY: as above.
        unsafe {
            (self.fns.mpp_buffer_group_get)(
                group,
                type_,
                MPP_BUFFER_EXTERNAL,
                TAG.as_ptr(),
                TAG.as_ptr(),
            )
        }
    }

    /// `mpp_buffer_get(group, buffer, size)`.
    ///
    /// # Safety
    /// `group` must be a live group of this library, `buffer` writable.
    pub unsafe fn buffer_get(
        &self,
        group: MppBufferGroup,
        buffer: *mut MppBuffer,
        size: usize,
    ) -> MPP_RET {
        // SAFETY: forwarded from the caller.
        unsafe {
            (self.fns.mpp_buffer_get_with_tag)(group, buffer, size, TAG.as_ptr(), TAG.as_ptr())
        }
    }

    /// `mpp_buffer_import(buffer, info)`: wraps a buffer described by `info` (a DMA-BUF fd)
    /// without copying; the `MppBuffer` takes its own reference to the fd.
    ///
    /// # Safety
    /// `info` must describe a valid buffer, `buffer` be writable.
    pub unsafe fn buffer_import(
        &self,
        info: *mut MppBufferInfo,
        buffer: *mut MppBuffer,
    ) -> MPP_RET {
        // SAFETY: forwarded from the caller; a null group means "no group" in MPP.
        unsafe {
            (self.fns.mpp_buffer_import_with_tag)(
                std::ptr::null_mut(),
                info,
                buffer,
                TAG.as_ptr(),
                TAG.as_ptr(),
            )
        }
    }

    /// `mpp_buffer_put(buffer)`: drops one reference.
    ///
    /// # Safety
    /// `buffer` must be a buffer of this library the caller holds a reference to.
    pub unsafe fn buffer_put(&self, buffer: MppBuffer) -> MPP_RET {
        // SAFETY: forwarded from the caller.
        unsafe { (self.fns.mpp_buffer_put_with_caller)(buffer, TAG.as_ptr()) }
    }

    /// `mpp_buffer_get_ptr(buffer)`: the CPU mapping of a buffer.
    ///
    /// # Safety
    /// `buffer` must be a live buffer of this library.
    pub unsafe fn buffer_get_ptr(&self, buffer: MppBuffer) -> *mut c_void {
        // SAFETY: forwarded from the caller.
        unsafe { (self.fns.mpp_buffer_get_ptr_with_caller)(buffer, TAG.as_ptr()) }
    }

    /// `mpp_buffer_get_size(buffer)`.
    ///
    /// # Safety
    /// `buffer` must be a live buffer of this library.
    pub unsafe fn buffer_get_size(&self, buffer: MppBuffer) -> usize {
        // SAFETY: forwarded from the caller.
        unsafe { (self.fns.mpp_buffer_get_size_with_caller)(buffer, TAG.as_ptr()) }
    }
}

/// The loader's message, shortened to the part after the file name it repeats.
fn loader_reason(e: &libloading::Error) -> String {
    let text = e.to_string();
    match text.rsplit_once(": ") {
        Some((_, reason)) if !reason.is_empty() => reason.to_owned(),
        _ => text,
    }
}
