//! Planning + resizing a 4032x3024 photo (a 12 MP phone JPEG) into tiles.
//! `cargo bench --bench tiling`.

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use tessera::vision::TileLimits;
use tessera::vision::tiling::{RequestedDetail, plan};
use tessera::vision::{ProjectorProfile, decode_image, render};

fn photo() -> Vec<u8> {
    let (w, h) = (4032u32, 3024u32);
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([
            (x * 255 / w) as u8,
            (y * 255 / h) as u8,
            ((x ^ y) & 0xff) as u8,
        ])
    });
    let mut out = Vec::new();
    image::DynamicImage::ImageRgb8(img)
        .write_to(
            &mut std::io::Cursor::new(&mut out),
            image::ImageFormat::Jpeg,
        )
        .expect("encode");
    out
}

fn bench(c: &mut Criterion) {
    let profile = ProjectorProfile::QWEN2VL_448;
    let jpeg = photo();
    let decoded = decode_image(&jpeg, u64::MAX).expect("decode");
    let mut group = c.benchmark_group("4032x3024");
    group.sample_size(10);
    group.bench_function("plan+resize+cut (decoded)", |b| {
        b.iter(|| {
            let p = plan(
                4032,
                3024,
                RequestedDetail::High,
                &profile,
                TileLimits::default(),
            );
            black_box(render::render(&decoded, &p).expect("render"))
        })
    });
    group.bench_function("decode JPEG+plan+resize+cut", |b| {
        b.iter(|| {
            let img = decode_image(black_box(&jpeg), u64::MAX).expect("decode");
            let p = plan(
                img.width,
                img.height,
                RequestedDetail::High,
                &profile,
                TileLimits::default(),
            );
            black_box(render::render(&img, &p).expect("render"))
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
