//! Decoding a large image straight to a smaller size. The tile plan never
//! needs more than a few megapixels, so a 13000x13000 PNG is read row by
//! row and averaged over k x k blocks as it streams in (memory: the small
//! output plus one row, not the 500 MB full image), and a JPEG is scaled
//! by 1/2, 1/4 or 1/8 inside its inverse DCT.

use super::decoded::DecodedImage;
use super::error::VisionError;
use std::io::Cursor;

/// The largest block side k that keeps `w/k x h/k` at or above `need`.
pub fn shrink_factor(w: u32, h: u32, need: (u32, u32)) -> u32 {
    let kw = w / need.0.max(1);
    let kh = h / need.1.max(1);
    kw.min(kh).max(1)
}

/// Whether [`png_shrunk`] can stream this PNG (Adam7-interlaced ones
/// arrive in passes and are decoded whole instead).
pub fn png_streams(bytes: &[u8]) -> bool {
    png::Decoder::new(Cursor::new(bytes))
        .read_info()
        .is_ok_and(|r| !r.info().interlaced)
}

/// Whether [`jpeg_scaled`] can decode this JPEG (8-bit gray or colour, not
/// CMYK), and if so whether it is progressive.
pub fn jpeg_scales(bytes: &[u8]) -> Option<bool> {
    let mut d = jpeg_decoder::Decoder::new(Cursor::new(bytes));
    d.read_info().ok()?;
    let info = d.info()?;
    matches!(
        info.pixel_format,
        jpeg_decoder::PixelFormat::RGB24 | jpeg_decoder::PixelFormat::L8
    )
    .then_some(info.coding_process == jpeg_decoder::CodingProcess::DctProgressive)
}

/// Decodes a JPEG at 1/`k` of its size (k = 1, 2, 4 or 8) inside the
/// inverse DCT, as libjpeg's scaled decoding does: no full-size pixels exist.
pub fn jpeg_scaled(bytes: &[u8], k: u32) -> Result<DecodedImage, VisionError> {
    let corrupt = |e: jpeg_decoder::Error| VisionError::Corrupt(e.to_string());
    let mut d = jpeg_decoder::Decoder::new(Cursor::new(bytes));
    d.read_info().map_err(corrupt)?;
    let info = d
        .info()
        .ok_or_else(|| VisionError::Corrupt("no JPEG header".into()))?;
    let k = k.clamp(1, 8) as u16;
    let (w, h) = d
        .scale(info.width.div_ceil(k), info.height.div_ceil(k))
        .map_err(corrupt)?;
    let pixels = d.decode().map_err(corrupt)?;
    let n = usize::from(w) * usize::from(h);
    let rgb = match d.info().map(|i| i.pixel_format) {
        Some(jpeg_decoder::PixelFormat::RGB24) => pixels,
        Some(jpeg_decoder::PixelFormat::L8) => pixels.iter().flat_map(|&g| [g, g, g]).collect(),
        _ => return Err(VisionError::Corrupt("unsupported JPEG pixel format".into())),
    };
    if rgb.len() != n * 3 {
        return Err(VisionError::Corrupt("the JPEG ended early".into()));
    }
    Ok(DecodedImage {
        width: u32::from(w),
        height: u32::from(h),
        rgb,
    })
}

/// Decodes a non-interlaced PNG averaged over `k` x `k` blocks (edge blocks
/// over the pixels they have), alpha flattened onto white as elsewhere.
pub fn png_shrunk(bytes: &[u8], k: u32) -> Result<DecodedImage, VisionError> {
    let corrupt = |e: png::DecodingError| VisionError::Corrupt(e.to_string());
    let mut decoder = png::Decoder::new(Cursor::new(bytes));
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder.read_info().map_err(corrupt)?;
    if reader.info().interlaced {
        return Err(VisionError::Corrupt(
            "interlaced PNG cannot be streamed".into(),
        ));
    }
    let (w, h) = (reader.info().width, reader.info().height);
    let (color, _) = reader.output_color_type();
    let channels = color.samples();
    let k = k.max(1);
    let (ow, oh) = (w.div_ceil(k), h.div_ceil(k));
    let mut out = Vec::with_capacity(ow as usize * oh as usize * 3);
    let mut acc = vec![0u32; ow as usize * 3];
    let mut rows_in_block = 0u32;
    let flush = |acc: &mut Vec<u32>, rows: u32, out: &mut Vec<u8>| {
        for (x, px) in acc.chunks_exact_mut(3).enumerate() {
            let cols = (w - x as u32 * k).min(k);
            let n = rows * cols;
            for c in px.iter_mut() {
                out.push(((*c + n / 2) / n) as u8);
                *c = 0;
            }
        }
    };
    while let Some(row) = reader.next_row().map_err(corrupt)? {
        for (x, px) in row.data().chunks_exact(channels).enumerate() {
            let rgb = to_rgb(px);
            let slot = &mut acc[(x / k as usize) * 3..][..3];
            for c in 0..3 {
                slot[c] += u32::from(rgb[c]);
            }
        }
        rows_in_block += 1;
        if rows_in_block == k {
            flush(&mut acc, k, &mut out);
            rows_in_block = 0;
        }
    }
    if rows_in_block > 0 {
        flush(&mut acc, rows_in_block, &mut out);
    }
    if out.len() != ow as usize * oh as usize * 3 {
        return Err(VisionError::Corrupt("the PNG ended early".into()));
    }
    Ok(DecodedImage {
        width: ow,
        height: oh,
        rgb: out,
    })
}

/// One 8-bit pixel (gray, gray+alpha, RGB or RGBA) as RGB on white.
fn to_rgb(px: &[u8]) -> [u8; 3] {
    let on_white =
        |v: u8, a: u8| ((u16::from(v) * u16::from(a) + 255 * (255 - u16::from(a))) / 255) as u8;
    match *px {
        [g] => [g, g, g],
        [g, a] => {
            let v = on_white(g, a);
            [v, v, v]
        }
        [r, g, b] => [r, g, b],
        [r, g, b, a] => [on_white(r, a), on_white(g, a), on_white(b, a)],
        _ => [0, 0, 0],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{DynamicImage, ImageFormat};

    fn encode(img: DynamicImage) -> Vec<u8> {
        let mut out = Vec::new();
        img.write_to(&mut Cursor::new(&mut out), ImageFormat::Png)
            .unwrap();
        out
    }

    #[test]
    fn block_averages_match_the_pixels() {
        // 5x3: left two columns red, the rest blue; k = 2 -> 3x2 output.
        let img = image::RgbImage::from_fn(5, 3, |x, _| {
            if x < 2 {
                image::Rgb([200, 0, 0])
            } else {
                image::Rgb([0, 0, 100])
            }
        });
        let d = png_shrunk(&encode(DynamicImage::ImageRgb8(img)), 2).unwrap();
        assert_eq!((d.width, d.height), (3, 2));
        assert_eq!(&d.rgb[..3], &[200, 0, 0]);
        assert_eq!(&d.rgb[3..6], &[0, 0, 100]);
        // The last column and row average over what exists.
        assert_eq!(&d.rgb[15..18], &[0, 0, 100]);
    }

    #[test]
    fn k_one_is_the_plain_decode_and_alpha_goes_white() {
        let img = image::RgbaImage::from_fn(3, 2, |x, _| image::Rgba([0, 0, 0, (x * 127) as u8]));
        let d = png_shrunk(&encode(DynamicImage::ImageRgba8(img.clone())), 1).unwrap();
        let whole =
            super::super::decode_image(&encode(DynamicImage::ImageRgba8(img)), 100).unwrap();
        assert_eq!(d.rgb, whole.rgb);
    }

    #[test]
    fn gray_and_palette_pngs_stream_too() {
        let gray = image::GrayImage::from_pixel(4, 4, image::Luma([77]));
        let d = png_shrunk(&encode(DynamicImage::ImageLuma8(gray)), 4).unwrap();
        assert_eq!((d.width, d.height, &d.rgb[..]), (1, 1, &[77, 77, 77][..]));
    }

    #[test]
    fn factors_keep_the_output_at_or_above_the_need() {
        assert_eq!(shrink_factor(13000, 13000, (1792, 1344)), 7);
        assert_eq!(shrink_factor(1000, 1000, (1792, 1344)), 1);
        assert_eq!(shrink_factor(4000, 100, (448, 10)), 8);
    }

    #[test]
    fn jpegs_decode_at_an_eighth_with_the_same_colours() {
        let img = image::RgbImage::from_fn(800, 600, |x, _| {
            if x < 400 {
                image::Rgb([220, 30, 30])
            } else {
                image::Rgb([20, 40, 200])
            }
        });
        let mut jpeg = Vec::new();
        DynamicImage::ImageRgb8(img)
            .write_to(&mut Cursor::new(&mut jpeg), ImageFormat::Jpeg)
            .unwrap();
        assert_eq!(jpeg_scales(&jpeg), Some(false));
        let d = jpeg_scaled(&jpeg, 8).unwrap();
        assert_eq!((d.width, d.height), (100, 75));
        let left = &d.rgb[(37 * 100 + 10) * 3..][..3];
        let right = &d.rgb[(37 * 100 + 90) * 3..][..3];
        assert!(left[0] > 180 && left[2] < 70, "{left:?}");
        assert!(right[2] > 160 && right[0] < 60, "{right:?}");
        assert!(jpeg_scales(b"not a jpeg").is_none());
    }

    #[test]
    fn truncated_pngs_are_errors_not_panics() {
        let img = image::RgbImage::from_pixel(64, 64, image::Rgb([1, 2, 3]));
        let bytes = encode(DynamicImage::ImageRgb8(img));
        for cut in [bytes.len() / 2, bytes.len() - 20, 40] {
            assert!(png_shrunk(&bytes[..cut], 2).is_err(), "cut at {cut}");
        }
    }
}
