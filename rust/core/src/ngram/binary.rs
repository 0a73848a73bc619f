//! Binary model files: the hash layout written as little-endian arrays, each 16-byte aligned, so a
//! file can be memory-mapped and queried without copying.
//!
//! ```text
//! "SFNGRAM\0" | u32 version=1 | u32 0x01020304 | u64 order | u64 vocab_size | u64 bits | u64 seed
//! u64 kind (0 backoff, 1 interpolated MLE) | u64 has_ngrams | u64 n_discounts | u64 extra_len
//! f64 weights[order] (kind 1) | f64 discounts[3 * n_discounts] | extra bytes (caller data, e.g. words)
//! f32 uni_prob[V+3] | f32 uni_bo[V+3] | u8 uni_present[V+3]
//! per order n = 2..N: u64 b | u64 m | u32 dir[2^b + 1] | u32 fp[m] | f32 prob[m] | f32 bo[m] (n < N)
//! per order n = 2..N (has_ngrams): u128 keys[m]
//! ```

use std::io::Write;
use std::sync::Arc;

use super::count::id_bits;
use super::estimate::Kind;
use super::lm::{NGramLM, MAX_ORDER};
use super::table::{Buf, Pod, Table};
use crate::{CoreError, Result};

const MAGIC: &[u8; 8] = b"SFNGRAM\0";
const VERSION: u32 = 1;

struct W<'a, T: Write> {
    w: &'a mut T,
    pos: usize,
    path: &'a str,
}

impl<T: Write> W<'_, T> {
    fn bytes(&mut self, b: &[u8]) -> Result<()> {
        self.w.write_all(b).map_err(|e| CoreError::io(self.path, &e))?;
        self.pos += b.len();
        Ok(())
    }
    fn u64(&mut self, x: u64) -> Result<()> {
        self.bytes(&x.to_le_bytes())
    }
    fn align(&mut self) -> Result<()> {
        let pad = (16 - self.pos % 16) % 16;
        self.bytes(&[0u8; 16][..pad])
    }
    fn arr<P: Pod>(&mut self, xs: &[P], f: impl Fn(&P) -> Vec<u8>) -> Result<()> {
        self.align()?;
        let mut block = Vec::with_capacity(64 * 1024);
        for x in xs {
            block.extend(f(x));
            if block.len() >= 60 * 1024 {
                self.bytes(&block)?;
                block.clear();
            }
        }
        self.bytes(&block)
    }
}

/// Write `lm` (and opaque `extra` bytes, e.g. a word table) to `out`; `ngrams` keeps the sorted n-gram
/// list (needed for ARPA output and dense `next_logprobs`; 16 more bytes per n-gram).
pub fn save<T: Write>(lm: &NGramLM, extra: &[u8], ngrams: bool, out: &mut T, path: &str) -> Result<()> {
    let mut w = W { w: out, pos: 0, path };
    w.bytes(MAGIC)?;
    w.bytes(&VERSION.to_le_bytes())?;
    w.bytes(&0x0102_0304u32.to_le_bytes())?;
    let (kind, weights) = match lm.kind() {
        Kind::Backoff => (0u64, Vec::new()),
        Kind::InterpolatedMle(wts) => (1u64, wts.clone()),
    };
    let keep = ngrams && lm.keys.is_some();
    for x in [
        lm.order as u64,
        lm.vocab_size as u64,
        lm.bits as u64,
        lm.seed,
        kind,
        keep as u64,
        lm.discounts.len() as u64,
        extra.len() as u64,
    ] {
        w.u64(x)?;
    }
    for x in &weights {
        w.bytes(&x.to_le_bytes())?;
    }
    for d in &lm.discounts {
        for x in d {
            w.bytes(&x.to_le_bytes())?;
        }
    }
    w.bytes(extra)?;
    w.arr(lm.uni_prob.as_slice(), |x| x.to_le_bytes().to_vec())?;
    w.arr(lm.uni_bo.as_slice(), |x| x.to_le_bytes().to_vec())?;
    w.arr(lm.uni_present.as_slice(), |x| vec![*x])?;
    for t in &lm.tables {
        w.align()?;
        w.u64(t.b as u64)?;
        w.u64(t.len() as u64)?;
        w.arr(t.dir.as_slice(), |x| x.to_le_bytes().to_vec())?;
        w.arr(t.fp.as_slice(), |x| x.to_le_bytes().to_vec())?;
        w.arr(t.prob.as_slice(), |x| x.to_le_bytes().to_vec())?;
        w.arr(t.bo.as_slice(), |x| x.to_le_bytes().to_vec())?;
    }
    if keep {
        if let Some(keys) = &lm.keys {
            for k in keys {
                w.arr(k.as_slice(), |x| x.to_le_bytes().to_vec())?;
            }
        }
    }
    Ok(())
}

struct R {
    map: Option<Arc<memmap2::Mmap>>,
    data: Arc<Vec<u8>>,
    pos: usize,
    len: usize,
}

impl R {
    fn bytes_at(&self) -> &[u8] {
        match &self.map {
            Some(m) => m,
            None => &self.data,
        }
    }
    fn err(&self, msg: impl Into<String>) -> CoreError {
        CoreError::format("binary model", format!("byte offset {}", self.pos), msg)
    }
    fn take(&mut self, n: usize) -> Result<&[u8]> {
        if self.len.saturating_sub(self.pos) < n {
            return Err(self.err(format!("file ends early: need {n} more bytes (truncated?)")));
        }
        let s = self.pos;
        self.pos += n;
        Ok(&self.bytes_at()[s..s + n])
    }
    fn u64(&mut self) -> Result<u64> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }
    fn f64(&mut self) -> Result<f64> {
        Ok(f64::from_bits(self.u64()?))
    }
    fn align(&mut self) -> Result<()> {
        let pad = (16 - self.pos % 16) % 16;
        self.take(pad).map(|_| ())
    }
    fn arr<P: Pod>(&mut self, n: usize, what: &str, parse: impl Fn(&[u8]) -> P) -> Result<Buf<P>> {
        self.align()?;
        let size = std::mem::size_of::<P>();
        let total = n.checked_mul(size).ok_or_else(|| self.err(format!("{what}: size overflows")))?;
        if self.len.saturating_sub(self.pos) < total {
            return Err(self.err(format!("{what}: {n} elements run past the end of the file (truncated?)")));
        }
        let out = match &self.map {
            Some(m) => Buf::mapped(m.clone(), self.pos, n, what)?,
            None => Buf::Owned(self.data[self.pos..self.pos + total].chunks_exact(size).map(parse).collect()),
        };
        self.pos += total;
        Ok(out)
    }
}

fn le<const N: usize>(b: &[u8]) -> [u8; N] {
    let mut a = [0u8; N];
    a.copy_from_slice(&b[..N]);
    a
}

/// Read a model written by [`save`]: memory-mapped (`mmap = true`, the file must stay unchanged while the
/// model lives) or copied into memory. Returns the model and the caller's extra bytes.
pub fn load(path: &str, mmap: bool) -> Result<(NGramLM, Vec<u8>)> {
    let file = std::fs::File::open(path).map_err(|e| CoreError::io(path, &e))?;
    let mut r = if mmap {
        // SAFETY: the map is read-only; the caller is told (docstring) not to modify the file while the
        // model is alive. Every view into it is bounds- and alignment-checked in `Buf::mapped`.
        let m = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| CoreError::io(path, &e))?;
        let len = m.len();
        R { map: Some(Arc::new(m)), data: Arc::new(Vec::new()), pos: 0, len }
    } else {
        let d = std::fs::read(path).map_err(|e| CoreError::io(path, &e))?;
        let len = d.len();
        R { map: None, data: Arc::new(d), pos: 0, len }
    };
    let fail =
        |r: &R, m: String| -> CoreError { CoreError::format(path, format!("byte offset {}", r.pos), m) };
    if r.take(8)? != MAGIC {
        return Err(fail(&r, "not a stepfuse n-gram binary (bad magic)".into()));
    }
    let ver = u32::from_le_bytes(le::<4>(r.take(4)?));
    if ver != VERSION {
        return Err(fail(&r, format!("unsupported version {ver}")));
    }
    if u32::from_le_bytes(le::<4>(r.take(4)?)) != 0x0102_0304 {
        return Err(fail(&r, "byte order differs from this machine's".into()));
    }
    let order = r.u64()? as usize;
    let vocab = r.u64()?;
    let bits = r.u64()? as u32;
    let seed = r.u64()?;
    let kind = r.u64()?;
    let has_keys = r.u64()?;
    let n_disc = r.u64()? as usize;
    let extra_len = r.u64()? as usize;
    if !(1..=MAX_ORDER).contains(&order) {
        return Err(fail(&r, format!("order {order} out of range")));
    }
    if vocab > (u32::MAX - 3) as u64 || bits != id_bits(vocab as u32) || order as u64 * bits as u64 > 128 {
        return Err(fail(&r, "vocab_size / bits inconsistent".into()));
    }
    if kind > 1 || has_keys > 1 || n_disc > MAX_ORDER {
        return Err(fail(&r, "bad header flags".into()));
    }
    let kind = if kind == 0 {
        Kind::Backoff
    } else {
        let w: Vec<f64> = (0..order).map(|_| r.f64()).collect::<Result<_>>()?;
        if w.iter().any(|x| !x.is_finite() || *x < 0.0) {
            return Err(fail(&r, "interpolation weights must be finite and non-negative".into()));
        }
        Kind::InterpolatedMle(w)
    };
    let mut discounts = Vec::with_capacity(n_disc);
    for _ in 0..n_disc {
        discounts.push([r.f64()?, r.f64()?, r.f64()?]);
    }
    let extra = r.take(extra_len)?.to_vec();
    let ids = vocab as usize + 3;
    let uni_prob = r.arr(ids, "uni_prob", |b| f32::from_le_bytes(le::<4>(b)))?;
    let uni_bo = r.arr(ids, "uni_bo", |b| f32::from_le_bytes(le::<4>(b)))?;
    let uni_present = r.arr(ids, "uni_present", |b| b[0])?;
    let mut tables = Vec::with_capacity(order - 1);
    for n in 2..=order {
        r.align()?;
        let at = format!("byte offset {}", r.pos);
        let b = r.u64()?;
        let m = r.u64()? as usize;
        if b > 32 || m > u32::MAX as usize {
            return Err(fail(&r, format!("order {n}: bad table header")));
        }
        let dir = r.arr((1usize << b) + 1, "directory", |x| u32::from_le_bytes(le::<4>(x)))?;
        let fp = r.arr(m, "fingerprints", |x| u32::from_le_bytes(le::<4>(x)))?;
        let prob = r.arr(m, "probabilities", |x| f32::from_le_bytes(le::<4>(x)))?;
        let bo = r.arr(if n < order { m } else { 0 }, "backoffs", |x| f32::from_le_bytes(le::<4>(x)))?;
        let t = Table { b: b as u32, dir, fp, prob, bo };
        t.validate(n == order, &at)?;
        tables.push(t);
    }
    let keys = if has_keys == 1 {
        let mut ks = Vec::with_capacity(order - 1);
        for t in &tables {
            ks.push(r.arr(t.len(), "n-gram keys", |x| u128::from_le_bytes(le::<16>(x)))?);
        }
        Some(ks)
    } else {
        None
    };
    let lm = NGramLM {
        order,
        vocab_size: vocab as u32,
        bits,
        kind,
        seed,
        uni_prob,
        uni_bo,
        uni_present,
        tables,
        keys,
        discounts,
    };
    Ok((lm, extra))
}

#[cfg(test)]
mod tests {
    use super::super::{estimate_mkn, estimate_mle, NGramCounts};
    use super::*;

    #[test]
    fn save_load_same_scores_and_truncation_errors() {
        let toks: Vec<u32> = (0..600u32).map(|i| (i * 5 + i / 7) % 17).collect();
        let offs: Vec<usize> = (0..=60).map(|i| i * 10).collect();
        let c = NGramCounts::count(&toks, &offs, 3, 17, 64).unwrap();
        let dir = std::env::temp_dir().join(format!("sf-ngram-bin-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for (i, lm) in [
            NGramLM::from_levels(estimate_mkn(&c, Some([0.5, 1.0, 1.5])).unwrap()).unwrap(),
            NGramLM::from_levels(estimate_mle(&c, &[0.2, 0.3, 0.5]).unwrap()).unwrap(),
        ]
        .into_iter()
        .enumerate()
        {
            let p = dir.join(format!("m{i}.bin"));
            let ps = p.to_str().unwrap();
            let mut f = std::fs::File::create(&p).unwrap();
            save(&lm, b"xyz", true, &mut f, ps).unwrap();
            drop(f);
            let ctx: Vec<i64> = vec![1, 2, -1, 3, 18, 4];
            let toks: Vec<i64> = (0..20).collect();
            let want =
                lm.score_batch(&ctx, 3, 2, &[toks.clone(), toks.clone(), toks.clone()].concat(), 20).unwrap();
            for mm in [true, false] {
                let (back, extra) = load(ps, mm).unwrap();
                assert_eq!(extra, b"xyz");
                let got = back
                    .score_batch(&ctx, 3, 2, &[toks.clone(), toks.clone(), toks.clone()].concat(), 20)
                    .unwrap();
                assert_eq!(got, want);
            }
            let bytes = std::fs::read(&p).unwrap();
            for cut in [0, 7, 20, 80, bytes.len() / 2, bytes.len() - 1] {
                std::fs::write(&p, &bytes[..cut]).unwrap();
                assert!(load(ps, true).is_err());
                assert!(load(ps, false).is_err());
            }
        }
        std::fs::remove_dir_all(&dir).ok();
    }
}
