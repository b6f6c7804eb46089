//! Encoded bytes -> RGB8 pixels. The header is read first, so a
//! decompression bomb is refused before its pixel buffer is allocated.

use super::decoded::DecodedImage;
use super::error::VisionError;
use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageReader, Limits};
use std::io::Cursor;

/// Ways to decode an image smaller than its full size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shrink {
    /// Decoded whole (WebP, GIF, interlaced PNG, CMYK or 16-bit JPEG).
    None,
    /// Rows streamed and averaged over k x k blocks (non-interlaced PNG).
    Png,
    /// Scaled by 1/2, 1/4 or 1/8 inside the IDCT; a progressive JPEG still
    /// holds its full-size coefficients while it decodes.
    Jpeg { progressive: bool },
}

/// What an image's header says, read before any pixel is decoded: enough
/// to plan its tiles and to know what decoding it will cost.
#[derive(Debug, Clone, Copy)]
pub struct Header {
    /// As displayed (EXIF orientation applied).
    pub width: u32,
    pub height: u32,
    /// Bytes per pixel of the decoder's native buffer (e.g. 4 for RGBA8).
    native_bpp: u64,
    /// How this image can be decoded smaller than it is.
    shrink: Shrink,
    /// EXIF orientation, read once here and applied after a shrunk decode.
    orientation: Option<Orientation>,
}

/// Reads the header: format, size, colour type, orientation. Refuses
/// what is not a supported image or is over `max_pixels`.
pub fn probe(bytes: &[u8], max_pixels: u64) -> Result<Header, VisionError> {
    let (mut decoder, format) = open(bytes)?;
    let (w, h) = decoder.dimensions();
    check_pixels(w, h, max_pixels)?;
    let orientation = decoder.orientation().ok();
    let swaps = matches!(
        orientation,
        Some(
            Orientation::Rotate90
                | Orientation::Rotate270
                | Orientation::Rotate90FlipH
                | Orientation::Rotate270FlipH
        )
    );
    let (width, height) = if swaps { (h, w) } else { (w, h) };
    Ok(Header {
        width,
        height,
        native_bpp: u64::from(decoder.color_type().bytes_per_pixel()),
        shrink: match format {
            image::ImageFormat::Png if super::shrink::png_streams(bytes) => Shrink::Png,
            image::ImageFormat::Jpeg => match super::shrink::jpeg_scales(bytes) {
                Some(progressive) => Shrink::Jpeg { progressive },
                None => Shrink::None,
            },
            _ => Shrink::None,
        },
        orientation,
    })
}

impl Header {
    fn reorients(&self) -> bool {
        self.orientation
            .is_some_and(|o| o != Orientation::NoTransforms)
    }

    /// The block side a decode to at least `need` (displayed) will use.
    fn factor(&self, need: (u32, u32)) -> u32 {
        match self.shrink {
            Shrink::None => 1,
            Shrink::Png => super::shrink::shrink_factor(self.width, self.height, need),
            Shrink::Jpeg { .. } => {
                let k = super::shrink::shrink_factor(self.width, self.height, need);
                [8, 4, 2].into_iter().find(|f| *f <= k).unwrap_or(1)
            }
        }
    }

    /// Size of the decoded image when decoding to at least `need`.
    pub fn decoded_size(&self, need: (u32, u32)) -> (u32, u32) {
        let k = self.factor(need);
        (self.width.div_ceil(k), self.height.div_ceil(k))
    }

    /// Most bytes decoding to at least `need` holds at once: the streamed
    /// output and its row buffers, or the native buffer, its RGB copy and
    /// a reoriented copy.
    pub fn decode_cost(&self, need: (u32, u32)) -> u64 {
        let full = u64::from(self.width) * u64::from(self.height);
        let (w, h) = self.decoded_size(need);
        let out = u64::from(w) * u64::from(h) * 3;
        let reoriented = out * if self.reorients() { 2 } else { 1 };
        match self.shrink {
            Shrink::Png if self.factor(need) > 1 => {
                let rows = u64::from(self.width.max(self.height)) * 8 * 3;
                return reoriented + rows + (1 << 20);
            }
            // Component planes at the scaled size, then the RGB output;
            // progressive coefficients are 16-bit, about 3 bytes a pixel.
            // Measured: a 10000x10000 JPEG at 1/4 peaks at 2.7x its output.
            Shrink::Jpeg { progressive } if self.factor(need) > 1 => {
                let coefficients = if progressive { full * 3 } else { 0 };
                return reoriented + 2 * out + coefficients + (8 << 20);
            }
            _ => {}
        }
        let reorient = if self.reorients() { self.native_bpp } else { 0 };
        full * (self.native_bpp + 3 + reorient) + (1 << 20)
    }
}

fn check_pixels(width: u32, height: u32, max_pixels: u64) -> Result<(), VisionError> {
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
    Ok(())
}

fn open(bytes: &[u8]) -> Result<(impl ImageDecoder + '_, image::ImageFormat), VisionError> {
    let reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| VisionError::Corrupt(e.to_string()))?;
    let format = match reader.format() {
        Some(
            f @ (image::ImageFormat::Png
            | image::ImageFormat::Jpeg
            | image::ImageFormat::WebP
            | image::ImageFormat::Gif),
        ) => f,
        _ => return Err(VisionError::NotAnImage),
    };
    let decoder = reader
        .into_decoder()
        .map_err(|e| VisionError::Corrupt(e.to_string()))?;
    Ok((decoder, format))
}

/// Decodes to at least `need` pixels (displayed), smaller than the
/// original when the format streams: what the tile plan needs, no more.
pub fn decode_to(
    bytes: &[u8],
    header: &Header,
    need: (u32, u32),
    max_pixels: u64,
) -> Result<DecodedImage, VisionError> {
    let k = header.factor(need);
    if k < 2 {
        return decode_image(bytes, max_pixels);
    }
    let shrunk = match header.shrink {
        Shrink::Jpeg { .. } => super::shrink::jpeg_scaled(bytes, k)?,
        _ => super::shrink::png_shrunk(bytes, k)?,
    };
    let Some(orientation) = header.orientation.filter(|_| header.reorients()) else {
        return Ok(shrunk);
    };
    let mut img = image::RgbImage::from_raw(shrunk.width, shrunk.height, shrunk.rgb)
        .map(DynamicImage::ImageRgb8)
        .ok_or_else(|| VisionError::Corrupt("shrunk image size".into()))?;
    img.apply_orientation(orientation);
    let rgb = img.into_rgb8();
    Ok(DecodedImage {
        width: rgb.width(),
        height: rgb.height(),
        rgb: rgb.into_raw(),
    })
}

/// Decodes PNG, JPEG, WebP or GIF (first frame), sniffing the format from
/// the bytes, applying EXIF orientation and flattening alpha onto white.
pub fn decode_image(bytes: &[u8], max_pixels: u64) -> Result<DecodedImage, VisionError> {
    let (mut decoder, _) = open(bytes)?;
    let (width, height) = decoder.dimensions();
    check_pixels(width, height, max_pixels)?;
    let pixels = u64::from(width) * u64::from(height);
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
