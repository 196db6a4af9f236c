//! Click counts per creative variant: what Thompson sampling among an
//! offer's variants draws from (`crate::logic::choose_variant`).
//!
//! Layout: flat arrays of every variant of every offer, offer by offer in
//! catalog order (`starts[i]..starts[i + 1]` are offer `i`'s), so choosing
//! among one offer's variants reads one short contiguous run. Counts are
//! discounted with the posteriors' half-life, as the offers' own are.
//!
//! **Sharing.** The pipeline holds the store as a [`VariantBackend`]: its
//! own, or one [`VariantHub`] for all of a server's engines, so that a
//! click taken by any worker teaches every engine ([`super::hub`]). A
//! refresh copies 24 bytes per variant.
//!
//! As key-value operations: one key per (offer id, variant), its value the
//! two counts and their time; an update is a script that decays and adds,
//! a read a `GET` decayed by the reader.

use super::hub::{Hub, Learned, Replicate};
use super::snapshot::SectionReader;
use crate::catalog::Catalog;

/// The variants' counts the pipeline uses: its own, or a shared one.
pub type VariantBackend = Learned<VariantStats>;

/// One variant store for all of a server's engines.
pub type VariantHub = Hub<VariantStats>;

/// Discounted impressions and clicks per (offer, variant).
#[derive(Clone, Debug, PartialEq)]
pub struct VariantStats {
    /// Per offer, where its variants begin; one more entry than offers.
    starts: Vec<u32>,
    /// Per offer, its id (for carrying counts to another catalog).
    offer_ids: Vec<u64>,
    impressions: Vec<f64>,
    clicks: Vec<f64>,
    updated_ns: Vec<u64>,
    half_life_ns: f64,
}

impl VariantStats {
    /// Empty counts for every variant of `catalog`'s offers, discounted
    /// with a half-life of `half_life_s` (0: none).
    pub fn new(catalog: &Catalog, half_life_s: f64) -> Self {
        let mut starts = Vec::with_capacity(catalog.len() + 1);
        let mut n = 0u32;
        for i in 0..catalog.len() {
            starts.push(n);
            n += catalog.variant_count(i) as u32;
        }
        starts.push(n);
        let n = n as usize;
        Self {
            starts,
            offer_ids: catalog.ids().to_vec(),
            impressions: vec![0.0; n],
            clicks: vec![0.0; n],
            updated_ns: vec![0; n],
            half_life_ns: half_life_s.max(0.0) * 1e9,
        }
    }

    /// Counts for `catalog` (another one), each variant keeping the counts
    /// of the same offer id's variant of the same position.
    pub fn carried_to(&self, catalog: &Catalog) -> Self {
        let mut next = Self::new(catalog, self.half_life_ns / 1e9);
        for (to, id) in catalog.ids().iter().enumerate() {
            let Some(from) = self.offer_ids.iter().position(|o| o == id) else {
                continue;
            };
            let (a, b) = (next.range(to), self.range(from));
            let n = a.len().min(b.len());
            for k in 0..n {
                next.impressions[a.start + k] = self.impressions[b.start + k];
                next.clicks[a.start + k] = self.clicks[b.start + k];
                next.updated_ns[a.start + k] = self.updated_ns[b.start + k];
            }
        }
        next
    }

    /// Whether this store holds `catalog`'s offers, in its order, each
    /// with its number of variants (what a shared store must, to be read
    /// by catalog index).
    pub fn fits(&self, catalog: &Catalog) -> bool {
        self.offer_ids == catalog.ids()
            && (0..catalog.len()).all(|i| self.range(i).len() == catalog.variant_count(i))
    }

    fn range(&self, offer: usize) -> std::ops::Range<usize> {
        match (self.starts.get(offer), self.starts.get(offer + 1)) {
            (Some(&a), Some(&b)) => a as usize..b as usize,
            _ => 0..0,
        }
    }

    /// The slot of `offer`'s variant `variant`, if both exist.
    fn slot(&self, offer: usize, variant: usize) -> Option<usize> {
        let r = self.range(offer);
        (variant < r.len()).then(|| r.start + variant)
    }

    fn decay_factor(&self, k: usize, now_ns: u64) -> f64 {
        let dt = now_ns.saturating_sub(self.updated_ns[k]);
        if self.half_life_ns <= 0.0 || dt == 0 {
            1.0
        } else {
            0.5f64.powf(dt as f64 / self.half_life_ns)
        }
    }

    fn decay_to(&mut self, k: usize, now_ns: u64) {
        let f = self.decay_factor(k, now_ns);
        self.impressions[k] *= f;
        self.clicks[k] *= f;
        self.updated_ns[k] = self.updated_ns[k].max(now_ns);
    }

    /// One impression of `offer`'s `variant`; false (nothing changed) when
    /// there is no such variant.
    pub fn observe_impression(&mut self, offer: usize, variant: usize, now_ns: u64) -> bool {
        let Some(k) = self.slot(offer, variant) else {
            return false;
        };
        self.decay_to(k, now_ns);
        self.impressions[k] += 1.0;
        true
    }

    /// One click on `offer`'s `variant`: one impression without a click
    /// becomes one with (never more clicks than impressions).
    pub fn observe_click(&mut self, offer: usize, variant: usize, now_ns: u64) -> bool {
        let Some(k) = self.slot(offer, variant) else {
            return false;
        };
        self.decay_to(k, now_ns);
        let without_click = (self.impressions[k] - self.clicks[k]).clamp(0.0, 1.0);
        self.clicks[k] += without_click;
        true
    }

    /// Appends every variant with data to a state file's section: a count,
    /// then per variant its offer id, index, counts and time.
    pub fn write_state(&self, out: &mut Vec<u8>) {
        let mut records = Vec::new();
        for (offer, &id) in self.offer_ids.iter().enumerate() {
            for (v, k) in self.range(offer).enumerate() {
                if self.impressions[k] > 0.0 {
                    records.push((id, v as u64, k));
                }
            }
        }
        out.extend_from_slice(&(records.len() as u64).to_le_bytes());
        for (id, v, k) in records {
            for word in [
                id,
                v,
                self.impressions[k].to_bits(),
                self.clicks[k].to_bits(),
                self.updated_ns[k],
            ] {
                out.extend_from_slice(&word.to_le_bytes());
            }
        }
    }

    /// Restores counts from a section [`Self::write_state`] wrote, by offer
    /// id and variant; checked whole first. Returns (restored, dropped:
    /// no such offer or variant in this catalog).
    pub fn restore_state(&mut self, bytes: &[u8]) -> crate::Result<(u64, u64)> {
        let mut r = SectionReader::new(bytes, "variants section");
        let n = r.u64("the count")?;
        if n.checked_mul(40) != Some(bytes.len() as u64 - 8) {
            return Err(r.bad(format!("{n} variants do not fill {} bytes", bytes.len())));
        }
        let mut records = Vec::with_capacity(n as usize);
        for k in 0..n {
            let (id, v) = (r.u64("offer_id")?, r.u64("variant")?);
            let (imps, clicks) = (r.f64("impressions")?, r.f64("clicks")?);
            let updated = r.u64("updated_ns")?;
            if !(0.0..=imps).contains(&clicks) {
                return Err(r.bad(format!("variant {k}: clicks outside 0..=impressions")));
            }
            records.push((id, v, imps, clicks, updated));
        }
        r.finish()?;
        let (mut restored, mut dropped) = (0, 0);
        for (id, v, imps, clicks, updated) in records {
            let slot = self
                .offer_ids
                .iter()
                .position(|&o| o == id)
                .and_then(|offer| self.slot(offer, v as usize));
            match slot {
                Some(k) => {
                    self.impressions[k] = imps;
                    self.clicks[k] = clicks;
                    self.updated_ns[k] = updated;
                    restored += 1;
                }
                None => dropped += 1,
            }
        }
        Ok((restored, dropped))
    }

    /// `(impressions, clicks)` of the variant `variant` of offer `offer`
    /// (catalog index) whose id is `offer_id`: none when this store holds
    /// another offer there (a shared store carried to a catalog swapped in
    /// before this engine's), so a decision never reads another offer's.
    pub fn counts(&self, offer: usize, offer_id: u64, variant: usize, now_ns: u64) -> (f64, f64) {
        if self.offer_ids.get(offer) != Some(&offer_id) {
            return (0.0, 0.0);
        }
        match self.slot(offer, variant) {
            Some(k) => {
                let f = self.decay_factor(k, now_ns);
                (self.impressions[k] * f, self.clicks[k] * f)
            }
            None => (0.0, 0.0),
        }
    }
}

impl Replicate for VariantStats {
    fn copy_from(&mut self, from: &Self) {
        self.starts.clone_from(&from.starts);
        self.offer_ids.clone_from(&from.offer_ids);
        self.impressions.clone_from(&from.impressions);
        self.clicks.clone_from(&from.clicks);
        self.updated_ns.clone_from(&from.updated_ns);
        self.half_life_ns = from.half_life_ns;
    }
}
