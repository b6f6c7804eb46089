//! Encoded bytes -> RGB8 pixels. The header is read first, so a
//! decompression bomb is refused before its pixel buffer is allocated.

use super::VisionError;
use image::{DynamicImage, ImageDecoder, ImageReader, Limits};
use std::io::Cursor;

/// An image as the vision encoder takes it: packed RGB8, row-major.
#[derive(Clone)]
pub struct DecodedImage {
    pub width: u32,
    pub height: u32,
    pub rgb: Vec<u8>,
}

impl std::fmt::Debug for DecodedImage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DecodedImage({}x{})", self.width, self.height)
    }
}

/// Decodes PNG, JPEG, WebP or GIF (first frame), sniffing the format from
/// the bytes, applying EXIF orientation and flattening alpha onto white.
pub fn decode_image(bytes: &[u8], max_pixels: u64) -> Result<DecodedImage, VisionError> {
    let reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| VisionError::Corrupt(e.to_string()))?;
    match reader.format() {
        Some(
            image::ImageFormat::Png
            | image::ImageFormat::Jpeg
            | image::ImageFormat::WebP
            | image::ImageFormat::Gif,
        ) => {}
        _ => return Err(VisionError::NotAnImage),
    }
    let mut decoder = reader
        .into_decoder()
        .map_err(|e| VisionError::Corrupt(e.to_string()))?;
    let (width, height) = decoder.dimensions();
    let pixels = u64::from(width) * u64::from(height);
    if pixels > max_pixels {
        return Err(VisionError::TooManyPixels {
            width,
            height,
            pixels,
            limit: max_pixels,
        });
    }
    if pixels == 0 {
        return Err(VisionError::Corrupt("the image has no pixels".into()));
    }
    let mut limits = Limits::default();
    // Room for the decoded buffer in the widest colour type (RGBA32F), plus slack.
    limits.max_alloc = Some(pixels.saturating_mul(16).saturating_add(1 << 20));
    decoder
        .set_limits(limits)
        .map_err(|e| VisionError::Corrupt(e.to_string()))?;
    let orientation = decoder.orientation().ok();
    let mut img =
        DynamicImage::from_decoder(decoder).map_err(|e| VisionError::Corrupt(e.to_string()))?;
    if let Some(o) = orientation {
        img.apply_orientation(o);
    }
    let rgb = flatten_on_white(img);
    Ok(DecodedImage {
        width: rgb.width(),
        height: rgb.height(),
        rgb: rgb.into_raw(),
    })
}

fn flatten_on_white(img: DynamicImage) -> image::RgbImage {
    if !img.color().has_alpha() {
        return img.into_rgb8();
    }
    let rgba = img.into_rgba8();
    let (w, h) = rgba.dimensions();
    let mut out = image::RgbImage::new(w, h);
    for (src, dst) in rgba.pixels().zip(out.pixels_mut()) {
        let a = u16::from(src[3]);
        for c in 0..3 {
            let v = (u16::from(src[c]) * a + 255 * (255 - a)) / 255;
            dst[c] = v as u8;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(img: DynamicImage) -> Vec<u8> {
        let mut out = Vec::new();
        img.write_to(&mut Cursor::new(&mut out), image::ImageFormat::Png)
            .unwrap();
        out
    }

    #[test]
    fn decodes_png_to_rgb() {
        let img = DynamicImage::ImageRgb8(image::RgbImage::from_pixel(3, 2, image::Rgb([1, 2, 3])));
        let d = decode_image(&png(img), 100).unwrap();
        assert_eq!((d.width, d.height), (3, 2));
        assert_eq!(&d.rgb[..3], &[1, 2, 3]);
    }

    fn encode(img: &DynamicImage, format: image::ImageFormat) -> Vec<u8> {
        let mut out = Vec::new();
        img.write_to(&mut Cursor::new(&mut out), format).unwrap();
        out
    }

    #[test]
    fn sniffs_jpeg_webp_and_gif_whatever_the_mime() {
        let img =
            DynamicImage::ImageRgb8(image::RgbImage::from_pixel(6, 4, image::Rgb([200, 0, 0])));
        for format in [
            image::ImageFormat::Jpeg,
            image::ImageFormat::WebP,
            image::ImageFormat::Gif,
        ] {
            let d = decode_image(&encode(&img, format), 100).unwrap();
            assert_eq!((d.width, d.height), (6, 4), "{format:?}");
            assert!(
                d.rgb[0] > 150 && d.rgb[2] < 60,
                "{format:?}: {:?}",
                &d.rgb[..3]
            );
        }
    }

    /// Inserts an EXIF APP1 segment with the given orientation after SOI.
    fn with_exif_orientation(jpeg: &[u8], orientation: u16) -> Vec<u8> {
        let mut tiff = b"II*\0".to_vec();
        tiff.extend_from_slice(&8u32.to_le_bytes());
        tiff.extend_from_slice(&1u16.to_le_bytes()); // one IFD entry
        tiff.extend_from_slice(&0x0112u16.to_le_bytes()); // Orientation
        tiff.extend_from_slice(&3u16.to_le_bytes()); // SHORT
        tiff.extend_from_slice(&1u32.to_le_bytes());
        tiff.extend_from_slice(&orientation.to_le_bytes());
        tiff.extend_from_slice(&[0, 0]);
        tiff.extend_from_slice(&0u32.to_le_bytes()); // no next IFD
        let mut app1 = b"Exif\0\0".to_vec();
        app1.extend_from_slice(&tiff);
        let mut out = jpeg[..2].to_vec();
        out.extend_from_slice(&[0xFF, 0xE1]);
        out.extend_from_slice(&((app1.len() + 2) as u16).to_be_bytes());
        out.extend_from_slice(&app1);
        out.extend_from_slice(&jpeg[2..]);
        out
    }

    #[test]
    fn exif_orientation_is_applied() {
        let img = DynamicImage::ImageRgb8(image::RgbImage::new(8, 2));
        let jpeg = encode(&img, image::ImageFormat::Jpeg);
        let rotated = decode_image(&with_exif_orientation(&jpeg, 6), 100).unwrap();
        assert_eq!((rotated.width, rotated.height), (2, 8));
        let upright = decode_image(&with_exif_orientation(&jpeg, 1), 100).unwrap();
        assert_eq!((upright.width, upright.height), (8, 2));
    }

    #[test]
    fn transparent_becomes_white() {
        let img = DynamicImage::ImageRgba8(image::RgbaImage::from_pixel(
            1,
            1,
            image::Rgba([0, 0, 0, 0]),
        ));
        let d = decode_image(&png(img), 100).unwrap();
        assert_eq!(d.rgb, vec![255, 255, 255]);
    }

    #[test]
    fn rejects_non_images_and_big_images() {
        assert!(matches!(
            decode_image(b"hello world, not an image", 100),
            Err(VisionError::NotAnImage)
        ));
        let img = DynamicImage::ImageRgb8(image::RgbImage::new(20, 20));
        assert!(matches!(
            decode_image(&png(img), 100),
            Err(VisionError::TooManyPixels { pixels: 400, .. })
        ));
    }
}
