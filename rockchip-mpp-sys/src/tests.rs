//! The declarations against the C headers. Every expected number below was printed by a C
//! program compiled against MPP's own headers (`inc/*.h`, 2024-03 snapshot of the public
//! repository) with gcc for x86_64 and with aarch64-linux-gnu-gcc (run under qemu-aarch64):
//! both LP64 targets gave identical output. 32-bit ARM would differ (4-byte pointers and
//! `size_t`) and is not a target of this project, so the layout tests are for 64-bit only.

use std::mem::{align_of, offset_of, size_of};

use super::*;

#[cfg(target_pointer_width = "64")]
#[test]
fn mpp_api_function_table_layout() {
    assert_eq!(size_of::<MppApi>(), 184);
    assert_eq!(align_of::<MppApi>(), 8);
    let offsets = [
        (offset_of!(MppApi, size), 0),
        (offset_of!(MppApi, version), 4),
        (offset_of!(MppApi, decode), 8),
        (offset_of!(MppApi, decode_put_packet), 16),
        (offset_of!(MppApi, decode_get_frame), 24),
        (offset_of!(MppApi, encode), 32),
        (offset_of!(MppApi, encode_put_frame), 40),
        (offset_of!(MppApi, encode_get_packet), 48),
        (offset_of!(MppApi, isp), 56),
        (offset_of!(MppApi, isp_put_frame), 64),
        (offset_of!(MppApi, isp_get_frame), 72),
        (offset_of!(MppApi, poll), 80),
        (offset_of!(MppApi, dequeue), 88),
        (offset_of!(MppApi, enqueue), 96),
        (offset_of!(MppApi, reset), 104),
        (offset_of!(MppApi, control), 112),
        (offset_of!(MppApi, reserv), 120),
    ];
    for (i, (got, want)) in offsets.iter().enumerate() {
        assert_eq!(got, want, "field {i} of MppApi");
    }
    // A null C function pointer is `None`, so the Option costs nothing.
    assert_eq!(
        size_of::<Option<unsafe extern "C" fn(MppCtx) -> MPP_RET>>(),
        8
    );
}

#[cfg(target_pointer_width = "64")]
#[test]
fn buffer_info_and_packet_segment_layout() {
    assert_eq!(size_of::<MppBufferInfo>(), 40);
    assert_eq!(align_of::<MppBufferInfo>(), 8);
    assert_eq!(offset_of!(MppBufferInfo, type_), 0);
    assert_eq!(offset_of!(MppBufferInfo, size), 8);
    assert_eq!(offset_of!(MppBufferInfo, ptr), 16);
    assert_eq!(offset_of!(MppBufferInfo, hnd), 24);
    assert_eq!(offset_of!(MppBufferInfo, fd), 32);
    assert_eq!(offset_of!(MppBufferInfo, index), 36);

    assert_eq!(size_of::<MppPktSeg>(), 24);
    assert_eq!(align_of::<MppPktSeg>(), 8);
    assert_eq!(offset_of!(MppPktSeg, index), 0);
    assert_eq!(offset_of!(MppPktSeg, type_), 4);
    assert_eq!(offset_of!(MppPktSeg, offset), 8);
    assert_eq!(offset_of!(MppPktSeg, len), 12);
    assert_eq!(offset_of!(MppPktSeg, next), 16);
}

#[test]
fn frame_metadata_layout() {
    assert_eq!(size_of::<MppFrameRational>(), 8);
    assert_eq!(align_of::<MppFrameRational>(), 4);
    assert_eq!(offset_of!(MppFrameRational, den), 4);

    assert_eq!(size_of::<MppFrameMasteringDisplayMetadata>(), 24);
    assert_eq!(align_of::<MppFrameMasteringDisplayMetadata>(), 4);
    assert_eq!(
        offset_of!(MppFrameMasteringDisplayMetadata, white_point),
        12
    );
    assert_eq!(
        offset_of!(MppFrameMasteringDisplayMetadata, max_luminance),
        16
    );
    assert_eq!(
        offset_of!(MppFrameMasteringDisplayMetadata, min_luminance),
        20
    );

    assert_eq!(size_of::<MppFrameContentLightMetadata>(), 4);
    assert_eq!(align_of::<MppFrameContentLightMetadata>(), 2);
    assert_eq!(offset_of!(MppFrameContentLightMetadata, MaxFALL), 2);

    assert_eq!(size_of::<MppFrameHdrDynamicMeta>(), 8);
    assert_eq!(align_of::<MppFrameHdrDynamicMeta>(), 4);
    assert_eq!(offset_of!(MppFrameHdrDynamicMeta, size), 4);
    assert_eq!(offset_of!(MppFrameHdrDynamicMeta, data), 8);
}

#[test]
fn enums_are_c_int_sized() {
    assert_eq!(size_of::<MPP_RET>(), 4);
    assert_eq!(size_of::<MppCodingType>(), 4);
    assert_eq!(size_of::<MpiCmd>(), 4);
    assert_eq!(size_of::<MppFrameFormat>(), 4);
    assert_eq!(size_of::<MppMetaKey>(), 4);
    assert_eq!(size_of::<MppBufferType>(), 4);
}

#[test]
fn control_commands() {
    let expected = [
        (MPP_ENABLE_DEINTERLACE, 2_097_153),
        (MPP_SET_INPUT_BLOCK, 2_097_154),
        (MPP_SET_INTPUT_BLOCK_TIMEOUT, 2_097_155),
        (MPP_SET_OUTPUT_BLOCK, 2_097_156),
        (MPP_SET_OUTPUT_BLOCK_TIMEOUT, 2_097_157),
        (MPP_SET_INPUT_TIMEOUT, 2_097_158),
        (MPP_SET_OUTPUT_TIMEOUT, 2_097_159),
        (MPP_SET_DISABLE_THREAD, 2_097_160),
        (MPP_START, 2_097_409),
        (MPP_STOP, 2_097_410),
        (MPP_PAUSE, 2_097_411),
        (MPP_RESUME, 2_097_412),
        (MPP_ENC_SET_CFG, 3_276_801),
        (MPP_ENC_GET_CFG, 3_276_802),
        (MPP_ENC_SET_IDR_FRAME, 3_276_809),
        (MPP_ENC_GET_HDR_SYNC, 3_276_813),
        (MPP_ENC_SET_SEI_CFG, 3_276_815),
        (MPP_ENC_SET_HEADER_MODE, 3_309_569),
        (MPP_ENC_GET_HEADER_MODE, 3_309_570),
    ];
    for (got, want) in expected {
        assert_eq!(got, want);
    }
}

#[test]
fn enum_values() {
    let expected = [
        (MPP_VIDEO_CodingAVC, 7),
        (MPP_VIDEO_CodingMJPEG, 8),
        (MPP_VIDEO_CodingVP8, 9),
        (MPP_VIDEO_CodingVC1, 16_777_216),
        (MPP_VIDEO_CodingHEVC, 16_777_220),
        (MPP_VIDEO_CodingAV1, 16_777_224),
        (MPP_CTX_ENC, 1),
        (MPP_FMT_YUV420SP, 0),
        (MPP_FMT_YUV420P, 4),
        (MPP_FMT_YUV422_YUYV, 8),
        (MPP_FMT_YUV422_UYVY, 10),
        (MPP_FMT_YUV444P, 16),
        (MPP_FMT_YUV_BUTT, 17),
        (MPP_FMT_RGB888, 65_542),
        (MPP_FMT_BGR888, 65_543),
        (MPP_FMT_RGBA8888, 65_549),
        (MPP_FMT_RGB_BUTT, 65_550),
        (MPP_BUFFER_EXTERNAL, 1),
        (MPP_BUFFER_TYPE_EXT_DMA, 2),
        (MPP_BUFFER_TYPE_DRM, 3),
        (MPP_BUFFER_TYPE_DMA_HEAP, 4),
        (MPP_ENC_RC_MODE_CBR, 1),
        (MPP_ENC_RC_MODE_AVBR, 3),
        (MPP_ENC_HEADER_MODE_EACH_IDR, 1),
        (MPP_ENC_SEI_MODE_ONE_FRAME, 2),
        (KEY_OUTPUT_INTRA, 1_869_177_970),
        (KEY_INPUT_IDR_REQ, 1_768_514_674),
        (KEY_OUTPUT_PACKET, 1_869_638_516),
        (KEY_INPUT_FRAME, 1_768_321_645),
        (KEY_TEMPORAL_ID, 1_953_261_924),
        (KEY_ENC_AVERAGE_QP, 1_635_149_681),
        (MPP_ERR_PERM, -9),
        (MPP_ERR_TIMEOUT, -8),
        (MPP_ERR_LIST_STREAM, -1001),
        (MPP_ERR_VPUHW, -1009),
        (MPP_EOS_STREAM_REACHED, -1011),
        (MPP_ERR_DISPLAY_FULL, -1013),
        (MPP_PORT_OUTPUT, 1),
        (MPP_POLL_BLOCK, -1),
    ];
    for (i, (got, want)) in expected.iter().enumerate() {
        assert_eq!(got, want, "entry {i}");
    }
    assert_eq!(MPP_BUFFER_FLAGS_CACHABLE, 131_072);
    assert_eq!(MPP_BUFFER_FLAGS_DMA32, 2_097_152);
    assert_eq!(mpp_ret_name(MPP_ERR_VPUHW), "MPP_ERR_VPUHW");
    assert_eq!(mpp_ret_name(-12345), "unknown MPP error");
}

#[test]
fn a_missing_library_is_a_typed_error_naming_each_attempt() {
    let err = Mpp::load_from(&[
        "/nonexistent/librockchip_mpp.so.1",
        "librockchip_mpp_none.so",
    ])
    .expect_err("no such library");
    let LoadError::NotFound { attempts } = &err else {
        panic!("{err:?}");
    };
    assert_eq!(attempts.len(), 2);
    assert_eq!(attempts[0].0, "/nonexistent/librockchip_mpp.so.1");
    let text = err.to_string();
    assert!(
        text.starts_with("Rockchip MPP library not found (/nonexistent/librockchip_mpp.so.1: ")
            && text.contains("No such file"),
        "{text}"
    );
}

#[test]
fn a_library_without_mpp_symbols_is_refused() {
    // libc is on every Linux box and has none of MPP's functions.
    let err = Mpp::load_from(&["libc.so.6"]).expect_err("libc is not MPP");
    assert!(
        matches!(
            err,
            LoadError::MissingSymbol {
                symbol: "mpp_create",
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "libc.so.6 is not a usable Rockchip MPP library: it has no symbol mpp_create"
    );
}

#[test]
fn the_default_names_are_tried_in_order() {
    assert_eq!(
        LIBRARY_NAMES,
        ["librockchip_mpp.so.1", "librockchip_mpp.so"]
    );
    assert!(Functions::NAMES.contains(&"mpp_buffer_import_with_tag"));
    assert_eq!(Functions::NAMES[0], "mpp_create");
    // Where the library is installed this loads it; elsewhere the error names both files.
    match Mpp::load() {
        Ok(mpp) => assert!(mpp.path.to_string_lossy().starts_with("librockchip_mpp")),
        Err(LoadError::NotFound { attempts }) => {
            let names: Vec<&str> = attempts.iter().map(|(n, _)| n.as_str()).collect();
            assert_eq!(names, LIBRARY_NAMES);
        }
        Err(e) => panic!("{e}"),
    }
}
