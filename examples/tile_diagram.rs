//! Draws docs/tiling.png: how a 1000x600 photo is planned with 448 px tiles
//! under the default `fit` tiling (3x2 grid, the photo at its own size with
//! grey padding on the left, thumbnail on the right).
//! `cargo run --example tile_diagram -- docs/tiling.png`

use image::{Rgb, RgbImage};
use tessera::vision::TileLimits;
use tessera::vision::tiling::{RequestedDetail, plan};
use tessera::vision::{DecodedImage, ProjectorProfile, render};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "docs/tiling.png".into());
    let (w, h) = (1000u32, 600u32);
    // A synthetic "photo": sky, sun, hills.
    let src = RgbImage::from_fn(w, h, |x, y| {
        let (fx, fy) = (x as f32 / w as f32, y as f32 / h as f32);
        let hill = 0.6 + 0.12 * (fx * 9.0).sin();
        let sun = ((x as f32 - 760.0).powi(2) + (y as f32 - 150.0).powi(2)).sqrt() < 70.0;
        if sun {
            Rgb([250, 200, 40])
        } else if fy > hill {
            Rgb([40, (120.0 + 60.0 * fx) as u8, 50])
        } else {
            Rgb([(90.0 + 80.0 * fy) as u8, (150.0 + 60.0 * fy) as u8, 235])
        }
    });
    let profile = ProjectorProfile::QWEN2VL_448;
    let p = plan(w, h, RequestedDetail::Auto, &profile, TileLimits::default());
    let img = DecodedImage {
        width: w,
        height: h,
        rgb: src.into_raw(),
    };
    let pieces = render::render(&img, &p)?;
    // Layout: tiles with a 12 px gap, then the thumbnail, on white, at 1/2 scale.
    let s = p.tile.width;
    let gap = 12;
    let thumb = p.thumbnail.ok_or("expected a thumbnail")?;
    let canvas_w = p.cols * s + (p.cols - 1) * gap + 3 * gap + thumb.width;
    let canvas_h = (p.rows * s + (p.rows - 1) * gap).max(thumb.height);
    let mut canvas = RgbImage::from_pixel(canvas_w, canvas_h, Rgb([255, 255, 255]));
    for (i, piece) in pieces.iter().enumerate() {
        let (x0, y0) = if (i as u32) < p.tiles() {
            let (c, r) = (i as u32 % p.cols, i as u32 / p.cols);
            (c * (s + gap), r * (s + gap))
        } else {
            (p.cols * s + (p.cols - 1) * gap + 3 * gap, 0)
        };
        for y in 0..piece.height {
            for x in 0..piece.width {
                let k = ((y * piece.width + x) * 3) as usize;
                let border = x < 3 || y < 3 || x >= piece.width - 3 || y >= piece.height - 3;
                let px = if border {
                    Rgb([220, 30, 30])
                } else {
                    Rgb([piece.rgb[k], piece.rgb[k + 1], piece.rgb[k + 2]])
                };
                canvas.put_pixel(x0 + x, y0 + y, px);
            }
        }
    }
    let small = image::imageops::resize(
        &canvas,
        canvas_w / 2,
        canvas_h / 2,
        image::imageops::FilterType::Triangle,
    );
    small.save(&out)?;
    println!(
        "{}x{} -> {}x{} tiles of {s} px ({} tokens each) + {}x{} thumbnail ({} tokens) = {} tokens",
        w,
        h,
        p.cols,
        p.rows,
        p.tile.tokens,
        thumb.width,
        thumb.height,
        thumb.tokens,
        p.tokens()
    );
    Ok(())
}
