//! Raw pictures in I420 (planar YUV 4:2:0), the one layout every encoder here takes, and the
//! conversions from what cameras deliver (YUYV, NV12) into it.

/// Why a picture could not be made or converted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// 4:2:0 subsampling halves both dimensions, so they must be even and non-zero.
    #[error(
        "picture size {width}x{height} is not supported (width and height must be even, 2..=8192)"
    )]
    BadSize { width: u32, height: u32 },
    /// A source buffer shorter than its size and stride say.
    #[error("{what} buffer has {got} bytes, {need} needed")]
    BufferTooSmall {
        what: &'static str,
        got: usize,
        need: usize,
    },
    /// A stride smaller than one row of pixels.
    #[error("stride {stride} is less than a row of {row} bytes")]
    BadStride { stride: usize, row: usize },
}

/// Largest width or height accepted; bigger than any encoder here takes, small enough that the
/// plane sizes cannot overflow.
const MAX_DIMENSION: u32 = 8192;

/// An I420 picture: a full-resolution luma plane, then Cb and Cr at half width and height.
/// Rows are tightly packed (stride = width, width / 2 for chroma).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct I420Frame {
    width: u32,
    height: u32,
    pub y: Vec<u8>,
    pub u: Vec<u8>,
    pub v: Vec<u8>,
}

impl I420Frame {
    /// A black picture (video-range: Y 16, chroma 128).
    pub fn new(width: u32, height: u32) -> Result<Self, FrameError> {
        if width == 0
            || height == 0
            || !width.is_multiple_of(2)
            || !height.is_multiple_of(2)
            || width > MAX_DIMENSION
            || height > MAX_DIMENSION
        {
            return Err(FrameError::BadSize { width, height });
        }
        let (w, h) = (width as usize, height as usize);
        Ok(Self {
            width,
            height,
            y: vec![16; w * h],
            u: vec![128; w * h / 4],
            v: vec![128; w * h / 4],
        })
    }

    pub fn width(&self) -> u32 {
        self.width
    }

    pub fn height(&self) -> u32 {
        self.height
    }

    /// Width of the chroma planes (also their stride).
    pub fn chroma_width(&self) -> usize {
        self.width as usize / 2
    }
}

/// Converts packed YUYV 4:2:2 (Y0 U Y1 V per two pixels, the common UVC format) into `out`,
/// whose size gives the picture size. Chroma of each pair of rows is averaged, rounding up, to
/// get 4:2:0.
pub fn yuyv_to_i420(src: &[u8], stride: usize, out: &mut I420Frame) -> Result<(), FrameError> {
    let (w, h) = (out.width as usize, out.height as usize);
    let row = w * 2;
    if stride < row {
        return Err(FrameError::BadStride { stride, row });
    }
    check_len("YUYV", src.len(), stride * (h - 1) + row)?;
    let cw = out.chroma_width();
    for pair in 0..h / 2 {
        let top = &src[2 * pair * stride..][..row];
        let bottom = &src[(2 * pair + 1) * stride..][..row];
        for (i, (t, b)) in top.chunks_exact(4).zip(bottom.chunks_exact(4)).enumerate() {
            let x = 2 * i;
            out.y[2 * pair * w + x] = t[0];
            out.y[2 * pair * w + x + 1] = t[2];
            out.y[(2 * pair + 1) * w + x] = b[0];
            out.y[(2 * pair + 1) * w + x + 1] = b[2];
            out.u[pair * cw + i] = average(t[1], b[1]);
            out.v[pair * cw + i] = average(t[3], b[3]);
        }
    }
    Ok(())
}

/// Converts NV12 (a luma plane, then one plane of interleaved Cb Cr at half resolution; the
/// format most hardware produces) into `out`. Both planes use `stride` bytes per row, as V4L2
/// reports it; `uv` may be a separate buffer (multi-planar capture) or the rest of one.
pub fn nv12_to_i420(
    y: &[u8],
    uv: &[u8],
    stride: usize,
    out: &mut I420Frame,
) -> Result<(), FrameError> {
    let (w, h) = (out.width as usize, out.height as usize);
    if stride < w {
        return Err(FrameError::BadStride { stride, row: w });
    }
    check_len("NV12 luma", y.len(), stride * (h - 1) + w)?;
    check_len("NV12 chroma", uv.len(), stride * (h / 2 - 1) + w)?;
    for r in 0..h {
        out.y[r * w..][..w].copy_from_slice(&y[r * stride..][..w]);
    }
    let cw = out.chroma_width();
    for r in 0..h / 2 {
        let line = &uv[r * stride..][..w];
        for (i, pair) in line.chunks_exact(2).enumerate() {
            out.u[r * cw + i] = pair[0];
            out.v[r * cw + i] = pair[1];
        }
    }
    Ok(())
}

fn check_len(what: &'static str, got: usize, need: usize) -> Result<(), FrameError> {
    if got < need {
        return Err(FrameError::BufferTooSmall { what, got, need });
    }
    Ok(())
}

fn average(a: u8, b: u8) -> u8 {
    ((u16::from(a) + u16::from(b)).div_ceil(2)) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_must_be_even_and_non_zero() {
        assert!(I420Frame::new(4, 2).is_ok());
        for (w, h) in [(0, 2), (3, 2), (4, 5), (8194, 2)] {
            assert_eq!(
                I420Frame::new(w, h),
                Err(FrameError::BadSize {
                    width: w,
                    height: h
                })
            );
        }
        let f = I420Frame::new(6, 4).expect("frame");
        assert_eq!((f.y.len(), f.u.len(), f.v.len()), (24, 6, 6));
        assert!(f.y.iter().all(|&p| p == 16) && f.u.iter().all(|&p| p == 128));
    }

    #[test]
    fn yuyv_known_pixels() {
        // 4x2 picture, stride 10 (2 bytes of padding per row, which must be ignored).
        #[rustfmt::skip]
        let src = [
            10, 100, 20, 200,   30, 50, 40, 60,   0xee, 0xee,
            11, 101, 21, 201,   31, 52, 41, 63,   0xee, 0xee,
        ];
        let mut out = I420Frame::new(4, 2).expect("frame");
        yuyv_to_i420(&src, 10, &mut out).expect("convert");
        assert_eq!(out.y, [10, 20, 30, 40, 11, 21, 31, 41]);
        // (100+101)/2 = 100.5 -> 101; (50+52)/2 = 51; (200+201) -> 201; (60+63) -> 62.
        assert_eq!(out.u, [101, 51]);
        assert_eq!(out.v, [201, 62]);
    }

    #[test]
    fn nv12_known_pixels() {
        // 4x4 picture, stride 6.
        #[rustfmt::skip]
        let y = [
            1, 2, 3, 4, 0, 0,
            5, 6, 7, 8, 0, 0,
            9, 10, 11, 12, 0, 0,
            13, 14, 15, 16,
        ];
        #[rustfmt::skip]
        let uv = [
            100, 200, 101, 201, 0, 0,
            102, 202, 103, 203,
        ];
        let mut out = I420Frame::new(4, 4).expect("frame");
        nv12_to_i420(&y, &uv, 6, &mut out).expect("convert");
        assert_eq!(out.y, (1..=16).collect::<Vec<u8>>());
        assert_eq!(out.u, [100, 101, 102, 103]);
        assert_eq!(out.v, [200, 201, 202, 203]);
    }

    #[test]
    fn short_buffers_and_strides_are_errors() {
        let mut out = I420Frame::new(4, 2).expect("frame");
        assert!(matches!(
            yuyv_to_i420(&[0; 15], 8, &mut out),
            Err(FrameError::BufferTooSmall { need: 16, .. })
        ));
        assert!(matches!(
            yuyv_to_i420(&[0; 64], 6, &mut out),
            Err(FrameError::BadStride { .. })
        ));
        assert!(matches!(
            nv12_to_i420(&[0; 8], &[0; 3], 4, &mut out),
            Err(FrameError::BufferTooSmall { .. })
        ));
        assert!(matches!(
            nv12_to_i420(&[0; 8], &[0; 4], 3, &mut out),
            Err(FrameError::BadStride { .. })
        ));
    }
}
