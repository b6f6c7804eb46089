//! Executes a [`TilePlan`]: SIMD resizing (fast_image_resize) and cropping
//! into the pieces the encoder receives. CPU-bound: callers run it on the
//! blocking pool, never on the async runtime.

use super::decoded::DecodedImage;
use super::error::VisionError;
use super::tiling::TilePlan;
use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};

fn resize(
    img: &DecodedImage,
    (w, h): (u32, u32),
    filter: FilterType,
    resizer: &mut Resizer,
) -> Result<DecodedImage, VisionError> {
    if (img.width, img.height) == (w, h) {
        return Ok(img.clone());
    }
    let corrupt = |e: &dyn std::fmt::Display| VisionError::Corrupt(format!("resize: {e}"));
    // Borrowed, not copied: a 12 MP source is 36 MB.
    let src =
        ImageRef::new(img.width, img.height, &img.rgb, PixelType::U8x3).map_err(|e| corrupt(&e))?;
    let mut dst = Image::new(w, h, PixelType::U8x3);
    let options = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(filter));
    resizer
        .resize(&src, &mut dst, &options)
        .map_err(|e| corrupt(&e))?;
    Ok(DecodedImage {
        width: w,
        height: h,
        rgb: dst.into_vec(),
    })
}

fn crop(img: &DecodedImage, x: u32, y: u32, w: u32, h: u32) -> DecodedImage {
    let stride = img.width as usize * 3;
    let mut rgb = Vec::with_capacity(w as usize * h as usize * 3);
    for row in y..y + h {
        let start = row as usize * stride + x as usize * 3;
        rgb.extend_from_slice(&img.rgb[start..start + w as usize * 3]);
    }
    DecodedImage {
        width: w,
        height: h,
        rgb,
    }
}

/// Grey that CLIP-style normalisation maps to about zero: padding reads as
/// "nothing here" to the encoder, as LLaVA's pad-to-square does.
const PAD: [u8; 3] = [122, 116, 104];

/// `img` at the top-left of a `w` x `h` canvas of [`PAD`]; `img` itself
/// when it already fills it.
fn pad(img: DecodedImage, w: u32, h: u32) -> DecodedImage {
    if (img.width, img.height) == (w, h) {
        return img;
    }
    let (cw, iw) = (w as usize * 3, img.width.min(w) as usize * 3);
    let mut rgb = PAD.repeat(w as usize * h as usize);
    for (y, row) in img
        .rgb
        .chunks_exact(img.width as usize * 3)
        .enumerate()
        .take(h as usize)
    {
        rgb[y * cw..y * cw + iw].copy_from_slice(&row[..iw]);
    }
    DecodedImage {
        width: w,
        height: h,
        rgb,
    }
}

/// The pieces of `img` in prompt order: tiles row-major, then the thumbnail.
pub fn render(img: &DecodedImage, plan: &TilePlan) -> Result<Vec<DecodedImage>, VisionError> {
    let mut resizer = Resizer::new();
    // A whole image is resized as the family's processor resizes it
    // (bicubic, as Pillow's and mtmd's); tiles and thumbnails bilinearly.
    if let Some(whole) = plan.whole {
        let size = (whole.width, whole.height);
        return Ok(vec![resize(
            img,
            size,
            FilterType::CatmullRom,
            &mut resizer,
        )?]);
    }
    let bilinear = FilterType::Bilinear;
    let mut pieces = Vec::with_capacity(plan.pieces() as usize);
    if plan.tiles() > 0 {
        let s = plan.tile.width;
        let drawn = resize(img, plan.drawn, bilinear, &mut resizer)?;
        let canvas = pad(drawn, s * plan.cols, s * plan.rows);
        for r in 0..plan.rows {
            for c in 0..plan.cols {
                pieces.push(crop(&canvas, c * s, r * s, s, s));
            }
        }
    }
    if let Some(t) = plan.thumbnail {
        pieces.push(resize(img, (t.width, t.height), bilinear, &mut resizer)?);
    }
    Ok(pieces)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vision::TileLimits;
    use crate::vision::pricing::{PieceRule, ProjectorProfile};
    use crate::vision::tiling::{RequestedDetail, plan};

    #[test]
    fn tiles_are_cut_row_major_from_the_resized_canvas() {
        // Left half red, right half blue, 60x30 -> a 2x1 grid of 40 px tiles
        // (4x2 ties on aspect but needs more than 0.5 * 40^2 * 8 pixels).
        let (w, h) = (60u32, 30u32);
        let mut rgb = Vec::new();
        for _ in 0..h {
            for x in 0..w {
                rgb.extend_from_slice(if x < w / 2 {
                    &[255, 0, 0]
                } else {
                    &[0, 0, 255]
                });
            }
        }
        let img = DecodedImage {
            width: w,
            height: h,
            rgb,
        };
        let profile = ProjectorProfile {
            tile_size: 40,
            tile_tokens: 25,
            rule: PieceRule::Fixed,
            thumbnail_budget: 75,
            tiling: crate::vision::TilingPolicy::Internvl,
            slices_itself: false,
        };
        let p = plan(w, h, RequestedDetail::High, &profile, TileLimits::default());
        assert_eq!((p.cols, p.rows), (2, 1));
        let pieces = render(&img, &p).unwrap();
        assert_eq!(pieces.len(), 3);
        assert!(pieces.iter().all(|t| t.width == 40 && t.height == 40));
        let centre = (20 * 40 + 20) * 3;
        assert_eq!(&pieces[0].rgb[centre..centre + 3], &[255, 0, 0]);
        assert_eq!(&pieces[1].rgb[centre..centre + 3], &[0, 0, 255]);
    }

    #[test]
    fn fit_draws_the_image_unstretched_and_pads_the_rest() {
        // 60x30 under `fit` with 40 px tiles: a 2x1 grid, the image at its
        // own size in the top-left, padding to the right of x = 60 and
        // below y = 30.
        let img = DecodedImage {
            width: 60,
            height: 30,
            rgb: [9u8, 200, 9].repeat(60 * 30),
        };
        let profile = ProjectorProfile {
            tile_size: 40,
            tile_tokens: 25,
            rule: PieceRule::Fixed,
            thumbnail_budget: 75,
            tiling: crate::vision::TilingPolicy::Fit,
            slices_itself: false,
        };
        let p = plan(
            60,
            30,
            RequestedDetail::High,
            &profile,
            TileLimits::default(),
        );
        assert_eq!((p.cols, p.rows, p.drawn), (2, 1, (60, 30)));
        let pieces = render(&img, &p).unwrap();
        let at = |t: &DecodedImage, x: usize, y: usize| {
            let i = (y * 40 + x) * 3;
            [t.rgb[i], t.rgb[i + 1], t.rgb[i + 2]]
        };
        assert_eq!(at(&pieces[0], 39, 29), [9, 200, 9]);
        assert_eq!(at(&pieces[0], 0, 30), PAD);
        assert_eq!(at(&pieces[1], 19, 0), [9, 200, 9]);
        assert_eq!(at(&pieces[1], 20, 0), PAD);
    }
}
