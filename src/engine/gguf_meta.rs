//! Reads scalar metadata from a GGUF header. llama-cpp-2 does not expose the
//! vision projector's hyper-parameters, and pricing needs two of them.

use std::collections::HashMap;
use std::io::{self, BufReader, Read};
use std::path::Path;

#[derive(Debug, Clone, PartialEq)]
pub enum Meta {
    Int(i64),
    Float(f64),
    Bool(bool),
    Str(String),
    /// Arrays are skipped; only their length is kept.
    Array(u64),
}

impl Meta {
    pub fn as_u32(&self) -> Option<u32> {
        match self {
            Meta::Int(i) => u32::try_from(*i).ok(),
            _ => None,
        }
    }
}

/// All key/value pairs of a GGUF file, tensors not read.
pub fn read(path: &Path) -> io::Result<HashMap<String, Meta>> {
    let mut r = BufReader::new(std::fs::File::open(path)?);
    let mut magic = [0u8; 4];
    r.read_exact(&mut magic)?;
    if &magic != b"GGUF" {
        return Err(bad("not a GGUF file"));
    }
    let version = u32_le(&mut r)?;
    if version < 2 {
        return Err(bad("GGUF version 1 is not supported"));
    }
    let _tensors = u64_le(&mut r)?;
    let n_kv = u64_le(&mut r)?;
    let mut out = HashMap::new();
    for _ in 0..n_kv.min(1 << 20) {
        let key = string(&mut r)?;
        let ty = u32_le(&mut r)?;
        out.insert(key, value(&mut r, ty)?);
    }
    Ok(out)
}

fn bad(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

fn u32_le(r: &mut impl Read) -> io::Result<u32> {
    let mut b = [0u8; 4];
    r.read_exact(&mut b)?;
    Ok(u32::from_le_bytes(b))
}

fn u64_le(r: &mut impl Read) -> io::Result<u64> {
    let mut b = [0u8; 8];
    r.read_exact(&mut b)?;
    Ok(u64::from_le_bytes(b))
}

fn string(r: &mut impl Read) -> io::Result<String> {
    let len = u64_le(r)?;
    if len > 1 << 30 {
        return Err(bad("string too long"));
    }
    let mut buf = vec![0u8; len as usize];
    r.read_exact(&mut buf)?;
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// Size in bytes of a fixed-size scalar type, `None` for strings/arrays.
fn scalar_size(ty: u32) -> Option<usize> {
    match ty {
        0 | 1 | 7 => Some(1),
        2 | 3 => Some(2),
        4..=6 => Some(4),
        10..=12 => Some(8),
        _ => None,
    }
}

fn value(r: &mut impl Read, ty: u32) -> io::Result<Meta> {
    if ty == 8 {
        return string(r).map(Meta::Str);
    }
    if ty == 9 {
        let elem = u32_le(r)?;
        let n = u64_le(r)?;
        for _ in 0..n {
            match scalar_size(elem) {
                Some(size) => {
                    let mut b = vec![0u8; size];
                    r.read_exact(&mut b)?;
                }
                None if elem == 8 => {
                    string(r)?;
                }
                None => return Err(bad("nested GGUF arrays are not supported")),
            }
        }
        return Ok(Meta::Array(n));
    }
    let size = scalar_size(ty).ok_or_else(|| bad("unknown GGUF value type"))?;
    let mut b = [0u8; 8];
    r.read_exact(&mut b[..size])?;
    Ok(match ty {
        0 => Meta::Int(i64::from(b[0])),
        1 => Meta::Int(i64::from(b[0] as i8)),
        2 => Meta::Int(i64::from(u16::from_le_bytes([b[0], b[1]]))),
        3 => Meta::Int(i64::from(i16::from_le_bytes([b[0], b[1]]))),
        4 => Meta::Int(i64::from(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))),
        5 => Meta::Int(i64::from(i32::from_le_bytes([b[0], b[1], b[2], b[3]]))),
        6 => Meta::Float(f64::from(f32::from_le_bytes([b[0], b[1], b[2], b[3]]))),
        7 => Meta::Bool(b[0] != 0),
        10 => Meta::Int(u64::from_le_bytes(b) as i64),
        11 => Meta::Int(i64::from_le_bytes(b)),
        _ => Meta::Float(f64::from_le_bytes(b)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{Projector, mmproj};

    #[test]
    fn reads_what_the_fixture_writer_wrote() {
        let dir = std::env::temp_dir().join(format!("tessera-meta-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("m.gguf");
        let mut bytes = Vec::new();
        mmproj(2, Projector::Mlp).write(&mut bytes).unwrap();
        std::fs::write(&path, bytes).unwrap();
        let kv = read(&path).unwrap();
        assert_eq!(kv["clip.vision.image_size"].as_u32(), Some(40));
        assert_eq!(kv["clip.projector_type"], Meta::Str("mlp".into()));
        assert_eq!(kv["clip.vision.image_mean"], Meta::Array(3));
        assert_eq!(kv["clip.has_vision_encoder"], Meta::Bool(true));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
