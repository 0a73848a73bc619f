//! ARPA back-off model files (the format `lmplz` writes): `\data\`, `ngram N=count` lines, one
//! `\N-grams:` section per order with `log10(p) <tab> w1 .. wN [<tab> log10(backoff)]`, then `\end\`.
//! Values stay log10 in the file and are natural log in memory.

use std::collections::HashMap;
use std::io::{BufRead, Write};

use rayon::prelude::*;

use super::count::{check_packable, id_bits, key_id, pack, Specials};
use super::estimate::{Kind, Levels};
use super::lm::NGramLM;
use crate::{CoreError, Result};

const LN10: f64 = std::f64::consts::LN_10;

fn fmt_log10(x: f32) -> String {
    if x == f32::NEG_INFINITY {
        return "-99".to_string();
    }
    let v = (x as f64 / LN10) as f32;
    if v == 0.0 {
        "0".to_string()
    } else {
        format!("{v}")
    }
}

fn io_err(path: &str, e: std::io::Error) -> CoreError {
    CoreError::io(path, &e)
}

/// Write `lm` as ARPA; `words[i]` is the string of user id `i` (`<unk>`, `<s>`, `</s>` for the specials).
pub fn write_arpa<W: Write>(lm: &NGramLM, words: &[String], out: &mut W, path: &str) -> Result<()> {
    if !matches!(lm.kind(), Kind::Backoff) {
        return Err(CoreError::invalid(
            "lm",
            "interpolated_mle models have no back-off form; ARPA output needs a Kneser-Ney or ARPA model",
        ));
    }
    let Some(keys) = &lm.keys else {
        return Err(CoreError::invalid(
            "lm",
            "this model was saved without its n-gram list (save(ngrams=True))",
        ));
    };
    let v = lm.vocab_size() as usize;
    if words.len() != v {
        return Err(CoreError::invalid(
            "words",
            format!("need one word per user id ({v}), got {}", words.len()),
        ));
    }
    let sp = lm.specials();
    let word = |id: u32| -> &str {
        if id == sp.unk {
            "<unk>"
        } else if id == sp.bos {
            "<s>"
        } else if id == sp.eos {
            "</s>"
        } else {
            words.get(id as usize).map(String::as_str).unwrap_or("<unk>")
        }
    };
    let n_max = lm.order();
    let present = lm.uni_present.as_slice();
    let uni: Vec<u32> = [sp.unk, sp.bos, sp.eos]
        .into_iter()
        .chain((0..lm.vocab_size()).filter(|&i| present[i as usize] != 0))
        .collect();
    let e = |r: std::io::Result<()>| r.map_err(|e| io_err(path, e));
    e(write!(out, "\\data\\\nngram 1={}\n", uni.len()))?;
    for n in 2..=n_max {
        e(writeln!(out, "ngram {n}={}", keys[n - 2].len()))?;
    }
    e(write!(out, "\n\\1-grams:\n"))?;
    let (up, ub) = (lm.uni_prob.as_slice(), lm.uni_bo.as_slice());
    for &w in &uni {
        if n_max > 1 {
            e(writeln!(out, "{}\t{}\t{}", fmt_log10(up[w as usize]), word(w), fmt_log10(ub[w as usize])))?;
        } else {
            e(writeln!(out, "{}\t{}", fmt_log10(up[w as usize]), word(w)))?;
        }
    }
    let bits = lm.bits;
    for n in 2..=n_max {
        e(write!(out, "\n\\{n}-grams:\n"))?;
        // Format in parallel blocks, write in order.
        let ks = keys[n - 2].as_slice();
        for block in ks.chunks(1 << 16) {
            let lines: Result<Vec<String>> = block
                .par_iter()
                .map(|&k| {
                    let ids: Vec<u32> = (0..n).map(|i| key_id(k, n, i, bits)).collect();
                    let (p, b) = lm
                        .entry(&ids)
                        .ok_or_else(|| CoreError::invalid("lm", "n-gram list and hash tables disagree"))?;
                    let text: Vec<&str> = ids.iter().map(|&i| word(i)).collect();
                    Ok(if n < n_max {
                        format!("{}\t{}\t{}\n", fmt_log10(p), text.join(" "), fmt_log10(b))
                    } else {
                        format!("{}\t{}\n", fmt_log10(p), text.join(" "))
                    })
                })
                .collect();
            for l in lines? {
                e(out.write_all(l.as_bytes()))?;
            }
        }
    }
    e(write!(out, "\n\\end\\\n"))?;
    Ok(())
}

struct Lines<R: BufRead> {
    r: R,
    no: usize,
    buf: String,
    name: String,
}

impl<R: BufRead> Lines<R> {
    /// Next line (without the newline), or None at EOF.
    fn next(&mut self) -> Result<Option<&str>> {
        self.buf.clear();
        let n = self.r.read_line(&mut self.buf).map_err(|e| {
            CoreError::format(self.name.clone(), format!("line {}", self.no + 1), format!("unreadable: {e}"))
        })?;
        if n == 0 {
            return Ok(None);
        }
        self.no += 1;
        Ok(Some(self.buf.trim_end_matches(['\n', '\r'])))
    }

    fn err(&self, msg: impl Into<String>) -> CoreError {
        CoreError::format(self.name.clone(), format!("line {}", self.no), msg)
    }

    /// Next non-blank line, or None at EOF.
    fn next_nonblank(&mut self) -> Result<Option<String>> {
        loop {
            match self.next()? {
                None => return Ok(None),
                Some(l) if l.trim().is_empty() => continue,
                Some(l) => return Ok(Some(l.to_string())),
            }
        }
    }
}

fn parse_f(s: &str, what: &str, lines_err: impl Fn(String) -> CoreError) -> Result<f32> {
    let v: f64 = s.parse().map_err(|_| lines_err(format!("{what} {s:?} is not a number")))?;
    if v.is_nan() || v == f64::INFINITY {
        return Err(lines_err(format!("{what} {s:?} must be finite or -inf")));
    }
    Ok((v * LN10) as f32)
}

/// Read an ARPA model. Returns the model and the word of every user id (specials excluded).
pub fn read_arpa<R: BufRead>(reader: R, name: &str) -> Result<(NGramLM, Vec<String>)> {
    let mut li = Lines { r: reader, no: 0, buf: String::new(), name: name.to_string() };
    loop {
        match li.next()? {
            None => return Err(li.err("missing \\data\\ header")),
            Some(l) if l.trim() == "\\data\\" => break,
            Some(_) => {}
        }
    }
    let mut counts: Vec<usize> = Vec::new();
    let first_section;
    loop {
        let Some(l) = li.next_nonblank()? else { return Err(li.err("unexpected end of file in \\data\\")) };
        let t = l.trim();
        if let Some(rest) = t.strip_prefix("ngram ") {
            let (n, c) = rest.split_once('=').ok_or_else(|| li.err("expected 'ngram N=count'"))?;
            let n: usize = n.trim().parse().map_err(|_| li.err("bad order in 'ngram N=count'"))?;
            let c: usize = c.trim().parse().map_err(|_| li.err("bad count in 'ngram N=count'"))?;
            if n != counts.len() + 1 {
                return Err(li.err(format!("orders must be listed as 1, 2, ...; got {n}")));
            }
            counts.push(c);
        } else {
            first_section = t.to_string();
            break;
        }
    }
    let n_max = counts.len();
    if n_max == 0 {
        return Err(li.err("no 'ngram N=count' lines"));
    }
    if n_max > super::lm::MAX_ORDER {
        return Err(li.err(format!("order {n_max} is above the supported {}", super::lm::MAX_ORDER)));
    }
    let mut header = first_section;
    // Unigrams first: they define the ids.
    let mut raw_uni: Vec<(String, f32, f32)> = Vec::with_capacity(counts[0]);
    let mut higher: Vec<Vec<(u128, f32, f32)>> = vec![Vec::new(); n_max.saturating_sub(1)];
    let mut vocab: HashMap<String, u32> = HashMap::new();
    let mut words: Vec<String> = Vec::new();
    let mut sp = Specials::new(0)?;
    let mut bits = 1;
    for n in 1..=n_max {
        if header != format!("\\{n}-grams:") {
            return Err(li.err(format!("expected \\{n}-grams:, got {header:?}")));
        }
        for _ in 0..counts[n - 1] {
            let Some(l) = li.next_nonblank()? else {
                return Err(li.err(format!("file ends inside \\{n}-grams: (truncated?)")));
            };
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.len() != n + 1 && f.len() != n + 2 {
                return Err(li.err(format!(
                    "expected {} or {} fields for a {n}-gram, got {}",
                    n + 1,
                    n + 2,
                    f.len()
                )));
            }
            let e = |m: String| CoreError::format(name.to_string(), format!("line {}", li.no), m);
            let p = parse_f(f[0], "log10 probability", e)?;
            let b = if f.len() == n + 2 { parse_f(f[n + 1], "log10 backoff", e)? } else { 0.0 };
            if n == 1 {
                raw_uni.push((f[1].to_string(), p, b));
            } else {
                let mut ids = [0u32; super::lm::MAX_ORDER];
                for (i, w) in f[1..=n].iter().enumerate() {
                    ids[i] = match *w {
                        "<unk>" => sp.unk,
                        "<s>" => sp.bos,
                        "</s>" => sp.eos,
                        w => *vocab
                            .get(w)
                            .ok_or_else(|| li.err(format!("word {w:?} is not among the unigrams")))?,
                    };
                }
                higher[n - 2].push((pack(&ids[..n], bits), p, b));
            }
        }
        if n == 1 {
            for (w, _, _) in &raw_uni {
                if !matches!(w.as_str(), "<unk>" | "<s>" | "</s>") {
                    if vocab.contains_key(w) {
                        return Err(li.err(format!("unigram {w:?} appears twice")));
                    }
                    vocab.insert(w.clone(), words.len() as u32);
                    words.push(w.clone());
                }
            }
            let v = u32::try_from(words.len()).map_err(|_| li.err("too many words"))?;
            sp = Specials::new(v)?;
            bits = check_packable(n_max, v)?;
            debug_assert_eq!(bits, id_bits(v));
        }
        header = match li.next_nonblank()? {
            Some(h) => h.trim().to_string(),
            None => return Err(li.err("missing \\end\\ (truncated?)")),
        };
    }
    if header != "\\end\\" {
        return Err(li.err(format!("expected \\end\\, got {header:?}")));
    }
    let v = words.len() as u32;
    let ids = v as usize + 3;
    let mut uni_prob = vec![f32::NEG_INFINITY; ids];
    let mut uni_bo = vec![0f32; ids];
    let mut uni_present = vec![0u8; ids];
    for (w, p, b) in raw_uni {
        let id = match w.as_str() {
            "<unk>" => sp.unk,
            "<s>" => sp.bos,
            "</s>" => sp.eos,
            w => vocab[w],
        } as usize;
        if uni_present[id] != 0 {
            return Err(CoreError::format(name, "\\1-grams:", format!("unigram {w:?} appears twice")));
        }
        uni_prob[id] = p;
        uni_bo[id] = b;
        uni_present[id] = 1;
    }
    let mut keys = Vec::new();
    let mut prob = Vec::new();
    let mut bo = Vec::new();
    for (i, mut lvl) in higher.into_iter().enumerate() {
        let n = i + 2;
        lvl.par_sort_unstable_by_key(|e| e.0);
        if let Some(w) = lvl.windows(2).find(|w| w[0].0 == w[1].0) {
            let ids: Vec<u32> = (0..n).map(|j| key_id(w[0].0, n, j, bits)).collect();
            return Err(CoreError::format(
                name,
                format!("\\{n}-grams:"),
                format!("n-gram {ids:?} appears twice"),
            ));
        }
        keys.push(lvl.iter().map(|e| e.0).collect());
        prob.push(lvl.iter().map(|e| e.1).collect());
        bo.push(if n == n_max { Vec::new() } else { lvl.iter().map(|e| e.2).collect() });
    }
    let lv = Levels {
        order: n_max,
        vocab_size: v,
        bits,
        kind: Kind::Backoff,
        uni_prob,
        uni_bo,
        uni_present,
        keys,
        prob,
        bo,
        discounts: Vec::new(),
    };
    Ok((NGramLM::from_levels(lv)?, words))
}

#[cfg(test)]
mod tests {
    use super::super::{estimate_mkn, NGramCounts};
    use super::*;

    #[test]
    fn round_trip() {
        let sents: Vec<u32> = (0..400u32).map(|i| (i * 7 + i / 3) % 13).collect();
        let offs: Vec<usize> = (0..=40).map(|i| i * 10).collect();
        let c = NGramCounts::count(&sents, &offs, 3, 13, 64).unwrap();
        let lm = NGramLM::from_levels(estimate_mkn(&c, Some([0.5, 1.0, 1.5])).unwrap()).unwrap();
        let words: Vec<String> = (0..13).map(|i| format!("w{i}")).collect();
        let mut buf = Vec::new();
        write_arpa(&lm, &words, &mut buf, "mem").unwrap();
        let (back, w2) = read_arpa(&buf[..], "mem").unwrap();
        assert_eq!(w2, words);
        let mut buf2 = Vec::new();
        write_arpa(&back, &w2, &mut buf2, "mem").unwrap();
        let (a, b) = (String::from_utf8(buf).unwrap(), String::from_utf8(buf2).unwrap());
        assert_eq!(a.lines().count(), b.lines().count());
        for (x, y) in a.lines().zip(b.lines()) {
            let (fx, fy): (Vec<&str>, Vec<&str>) = (x.split('\t').collect(), y.split('\t').collect());
            assert_eq!(fx.len(), fy.len());
            for (u, v) in fx.iter().zip(&fy) {
                match (u.parse::<f64>(), v.parse::<f64>()) {
                    (Ok(p), Ok(q)) => assert!((p - q).abs() < 1e-6, "{x} vs {y}"),
                    _ => assert_eq!(u, v),
                }
            }
        }
    }

    #[test]
    fn errors_name_the_line() {
        let bad = "\\data\\\nngram 1=2\n\n\\1-grams:\n-1\ta\n-x\tb\n\\end\\\n";
        let e = read_arpa(bad.as_bytes(), "m.arpa").unwrap_err().to_string();
        assert!(e.contains("line 6"), "{e}");
        let trunc = "\\data\\\nngram 1=3\n\n\\1-grams:\n-1\ta\n";
        assert!(read_arpa(trunc.as_bytes(), "m.arpa").unwrap_err().to_string().contains("truncated"));
        assert!(read_arpa("".as_bytes(), "m.arpa").is_err());
    }
}
