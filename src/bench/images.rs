//! Images the load generators send: small, and each one different, so
//! that no cache answers for the encoder.

use base64::Engine as _;

/// A solid-colour PNG unique to `n`, as a data URL.
pub fn image_url(n: usize, side: u32) -> String {
    photo_url(n, side, side)
}

/// A `w` x `h` PNG, distinct for each `n` (no server may reuse another
/// request's image).
pub fn photo_url(n: usize, w: u32, h: u32) -> String {
    let rgb = [
        (n * 53 % 256) as u8,
        (n * 101 % 256) as u8,
        (n * 197 % 256) as u8,
    ];
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([rgb[0] ^ (x as u8 & 0x10), rgb[1] ^ (y as u8 & 0x10), rgb[2]])
    });
    let mut png = Vec::new();
    let _ = image::DynamicImage::ImageRgb8(img)
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png);
    format!(
        "data:image/png;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(png)
    )
}
