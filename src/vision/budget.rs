//! One budget of image memory for the whole server (`--max-decode-memory`).
//! Every request states, from its images' headers alone, the most memory
//! its decoding and tiling can take, and waits until the budget has that
//! much free, all at once (a request never holds part of it while waiting
//! for more, so requests cannot deadlock each other). Whatever arrives,
//! image memory in flight stays under the budget. The pieces a request
//! hands to the engine keep their share until the request is done with
//! them.

use std::sync::Arc;
use std::time::Instant;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Permits count KiB: `acquire_many` takes a u32, so up to 4 TiB.
const UNIT: u64 = 1024;

#[derive(Debug, Clone)]
pub struct DecodeBudget {
    sem: Arc<Semaphore>,
    units: u32,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BudgetError {
    #[error(
        "the images of this request need {need_mib} MiB to decode and tile, more than the server's whole image budget of {total_mib} MiB (--max-decode-memory); send smaller or fewer images"
    )]
    TooBig { need_mib: u64, total_mib: u64 },
    #[error(
        "the server is decoding other images and this request's deadline (--request-timeout) would pass before its turn; retry shortly"
    )]
    Timeout,
}

/// A share of the budget, given back when dropped.
#[derive(Debug)]
pub struct Grant {
    permit: Option<OwnedSemaphorePermit>,
}

impl Grant {
    /// Splits off `bytes` of this grant (what must outlive decoding); the
    /// rest stays here and is given back when this one drops.
    pub fn keep(&mut self, bytes: u64) -> Grant {
        let units = to_units(bytes) as usize;
        let kept = match self.permit.as_mut() {
            Some(p) if units > 0 => p.split(units.min(p.num_permits())),
            _ => None,
        };
        Grant { permit: kept }
    }

    /// Takes `other`'s share into this grant (both given back together).
    pub fn merge(&mut self, mut other: Grant) {
        match (self.permit.as_mut(), other.permit.take()) {
            (Some(p), Some(o)) => p.merge(o),
            (None, o) => self.permit = o,
            (Some(_), None) => {}
        }
    }

    /// Bytes this grant holds.
    pub fn bytes(&self) -> u64 {
        self.permit.as_ref().map_or(0, |p| p.num_permits() as u64) * UNIT
    }
}

fn to_units(bytes: u64) -> u32 {
    bytes.div_ceil(UNIT).min(u64::from(u32::MAX)) as u32
}

impl DecodeBudget {
    pub fn new(bytes: u64) -> Self {
        let units = to_units(bytes).max(1);
        DecodeBudget {
            sem: Arc::new(Semaphore::new(units as usize)),
            units,
        }
    }

    pub fn total_bytes(&self) -> u64 {
        u64::from(self.units) * UNIT
    }

    /// Bytes free now (for metrics and tests).
    pub fn available_bytes(&self) -> u64 {
        self.sem.available_permits() as u64 * UNIT
    }

    /// Waits, first come first served, until `bytes` are free, or fails
    /// when they never can be or `deadline` would pass first.
    pub async fn acquire(
        &self,
        bytes: u64,
        deadline: Option<Instant>,
    ) -> Result<Grant, BudgetError> {
        let units = to_units(bytes);
        if units > self.units {
            return Err(BudgetError::TooBig {
                need_mib: bytes.div_ceil(1 << 20),
                total_mib: self.total_bytes() >> 20,
            });
        }
        if units == 0 {
            return Ok(Grant { permit: None });
        }
        let wait = self.sem.clone().acquire_many_owned(units);
        let permit = match deadline {
            None => wait.await,
            Some(d) => tokio::time::timeout_at(d.into(), wait)
                .await
                .map_err(|_| BudgetError::Timeout)?,
        };
        // The semaphore is never closed.
        let permit = permit.map_err(|_| BudgetError::Timeout)?;
        Ok(Grant {
            permit: Some(permit),
        })
    }
}

/// What one image takes from the budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageCost {
    /// Held while it is decoded and cut, then given back.
    pub transient: u64,
    /// Held until the engine is done with its pieces.
    pub kept: u64,
}

/// Bytes of encoder input per byte of a piece's RGB pixels: mtmd's
/// preprocessing keeps one f32 per channel; a projector that slices whole
/// images itself adds an overview about the size of its slices.
const TENSOR_PER_RGB_BYTE: u64 = 4;
const TENSOR_PER_RGB_BYTE_SLICED: u64 = 8;

/// An image's cost, from its header and tile plan: the decode itself, the
/// decoded picture, the resizer's intermediate (decoded height x widest
/// output), the image drawn for the grid, the tile canvas and its crops,
/// and the encoder input its pieces become (held until the engine has
/// encoded them).
pub fn image_cost(header: &super::Header, plan: &super::TilePlan) -> ImageCost {
    let need = plan.needed_size();
    let (_, dh) = header.decoded_size(need);
    let resize = u64::from(dh) * u64::from(need.0) * 3;
    let per_byte = if plan.sliced_by_projector {
        TENSOR_PER_RGB_BYTE_SLICED
    } else {
        TENSOR_PER_RGB_BYTE
    };
    let kept = plan.pieces_bytes() * (1 + per_byte);
    // The image resized for the grid, copied onto the (padded) canvas.
    let drawn = if plan.whole.is_none() && plan.tiles() > 0 {
        u64::from(plan.drawn.0) * u64::from(plan.drawn.1) * 3
    } else {
        0
    };
    ImageCost {
        transient: header.decode_cost(need) + resize + drawn + kept,
        kept,
    }
}

/// A request decodes its images one after another, keeping every image's
/// pieces: the largest transient share plus all kept ones.
pub fn request_cost(costs: &[ImageCost]) -> u64 {
    costs.iter().map(|c| c.transient).max().unwrap_or(0) + costs.iter().map(|c| c.kept).sum::<u64>()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn grants_are_given_back_and_kept_shares_outlive_the_rest() {
        let b = DecodeBudget::new(10 << 20);
        let mut g = b.acquire(8 << 20, None).await.unwrap();
        assert_eq!(b.available_bytes(), 2 << 20);
        let kept = g.keep(1 << 20);
        drop(g);
        assert_eq!(b.available_bytes(), 9 << 20);
        assert_eq!(kept.bytes(), 1 << 20);
        drop(kept);
        assert_eq!(b.available_bytes(), 10 << 20);
    }

    #[tokio::test]
    async fn too_big_is_refused_at_once_and_waiting_respects_the_deadline() {
        let b = DecodeBudget::new(4 << 20);
        assert!(matches!(
            b.acquire(5 << 20, None).await,
            Err(BudgetError::TooBig {
                need_mib: 5,
                total_mib: 4
            })
        ));
        let _held = b.acquire(3 << 20, None).await.unwrap();
        let soon = Instant::now() + Duration::from_millis(20);
        assert_eq!(
            b.acquire(2 << 20, Some(soon)).await.unwrap_err(),
            BudgetError::Timeout
        );
    }

    #[tokio::test]
    async fn a_waiter_gets_its_share_when_it_frees() {
        let b = DecodeBudget::new(4 << 20);
        let held = b.acquire(3 << 20, None).await.unwrap();
        let mut waiter = std::pin::pin!(b.acquire(2 << 20, None));
        // Polled once: it really waits while the share is held.
        assert!(futures::poll!(waiter.as_mut()).is_pending());
        drop(held);
        assert_eq!(waiter.await.map(|g| g.bytes()), Ok(2 << 20));
    }
}
