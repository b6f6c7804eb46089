//! A request's image path, from URLs to decoded pieces: fetched within the
//! download reserve, probed and priced, then decoded and cut with the whole
//! request's image memory reserved at once (`vision::budget`).

use super::error::PrepareError;
use super::images::{self, ImageRef, cut_all, fetch_remote, probe_all};
use super::{Preparer, blocking_failed};
use crate::engine::{EngineError, ModelInfo};
use crate::vision::budget::{BudgetError, Grant, request_cost};
use crate::vision::tiling::TilePlan;
use crate::vision::{DecodedImage, ProjectorProfile};
use std::sync::Arc;

impl Preparer {
    /// A video's or clip's bytes: a data URL decoded, a remote or local one
    /// fetched under the image fetch policy, at most `max` bytes either way.
    pub(super) async fn media_bytes(
        &self,
        url: &str,
        param: &str,
        max: usize,
        words: &'static images::MediaWords,
    ) -> Result<Vec<u8>, PrepareError> {
        use crate::vision::{VisionError, remote};
        let allowance = remote::Allowance::new(max);
        let fetch = images::fetch_source(url, max, &allowance, &self.limits);
        let took_too_long = || VisionError::Fetch("it took too long".into());
        let fetched = tokio::time::timeout(self.limits.remote.timeout, fetch)
            .await
            .map_err(|_| images::source_error(took_too_long(), param, words))?
            .map_err(|e| images::source_error(e, param, words))?;
        if let Some(bytes) = fetched {
            return Ok(bytes);
        }
        let (url, param) = (url.to_string(), param.to_string());
        self.images
            .run(move || {
                crate::vision::image_bytes(&url, max)
                    .map_err(|e| images::source_error(e, &param, words))
            })
            .await
            .map_err(blocking_failed)?
    }

    /// Fetches, probes, prices and cuts a request's images, holding the
    /// budget its pieces keep until the engine is done with them.
    pub(super) async fn images(
        &self,
        info: &ModelInfo,
        urls: Vec<ImageRef>,
        deadline: Option<std::time::Instant>,
    ) -> Result<(Vec<(TilePlan, Vec<DecodedImage>)>, Option<Grant>), PrepareError> {
        let Some(first) = urls.first() else {
            return Ok((Vec::new(), None));
        };
        let profile = match info.profile {
            Some(p) if info.vision => p,
            _ => {
                return Err(PrepareError::invalid(
                    "this model cannot see images: it was started without a vision projector (--mmproj)",
                )
                .param(first.param.clone())
                .code("images_not_supported"));
            }
        };
        if urls.len() > self.limits.max_images {
            return Err(PrepareError::invalid(format!(
                "the request has {} images, above the limit of {} (--max-images)",
                urls.len(),
                self.limits.max_images
            ))
            .param("messages"));
        }
        let started = std::time::Instant::now();
        // Downloaded bytes are memory too: reserved before they arrive,
        // held (what came) until the decode is done.
        let mut reserve = self
            .decode_budget
            .acquire(images::download_reserve(&urls, &self.limits), deadline)
            .await
            .map_err(budget_error)?;
        let fetched = fetch_remote(urls, &self.limits).await?;
        let came: usize = fetched
            .iter()
            .filter_map(|(_, b)| b.as_ref())
            .map(Vec::len)
            .sum();
        let downloads = reserve.keep(came as u64);
        drop(reserve);
        // mtmd's own count prices whole images for the families that get
        // them whole (`families::Family::whole_to_projector`).
        let whole = info
            .projector
            .as_deref()
            .and_then(crate::engine::families::family)
            .is_some_and(|f| f.whole_to_projector);
        let oracle = info.preprocessor.clone().filter(|_| whole);
        let decoded = self
            .decode(fetched, downloads, (profile, oracle), deadline)
            .await?;
        self.metrics
            .image_decode
            .observe(started.elapsed().as_secs_f64());
        for (plan, _) in &decoded.0 {
            self.metrics
                .tiles_per_image
                .observe(f64::from(plan.tiles()));
        }
        Ok((decoded.0, Some(decoded.1)))
    }

    /// Decoding, tiling and resizing are CPU work: off the runtime, and the
    /// whole request's image memory reserved at once before any decode.
    pub(super) async fn decode(
        &self,
        fetched: Vec<(ImageRef, Option<Vec<u8>>)>,
        downloads: Grant,
        (profile, oracle): (
            ProjectorProfile,
            Option<Arc<crate::engine::pieces::Preprocessor>>,
        ),
        deadline: Option<std::time::Instant>,
    ) -> Result<(Vec<(TilePlan, Vec<DecodedImage>)>, Grant), PrepareError> {
        let limits = self.limits.clone();
        let probed = self
            .images
            .run(move || probe_all(fetched, &limits, &profile, oracle.as_deref()))
            .await
            .map_err(blocking_failed)??;
        let costs: Vec<_> = probed.iter().map(|p| p.cost).collect();
        let mut grant = self
            .decode_budget
            .acquire(request_cost(&costs), deadline)
            .await
            .map_err(budget_error)?;
        let kept = grant.keep(costs.iter().map(|c| c.kept).sum());
        let limits = self.limits.clone();
        let cut = self
            .images
            .run(move || {
                let out = cut_all(probed, &limits);
                drop((grant, downloads));
                out
            })
            .await
            .map_err(blocking_failed)??;
        Ok((cut, kept))
    }
}

pub(super) fn budget_error(e: BudgetError) -> PrepareError {
    match e {
        BudgetError::TooBig { .. } => PrepareError::invalid(e.to_string())
            .param("messages")
            .code("image_too_large"),
        BudgetError::Timeout => EngineError::Timeout.into(),
    }
}
