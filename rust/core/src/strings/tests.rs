//! Oracle tests of every engine (brute force next to the test).

use super::*;
use proptest::prelude::*;

fn oracle(t: &[u64], p: &[u64]) -> Vec<u32> {
    if p.len() > t.len() {
        return vec![];
    }
    (0..=t.len() - p.len()).map(|i| p.iter().zip(&t[i..]).filter(|(a, b)| a != b).count() as u32).collect()
}

const METHODS: [Method; 5] =
    [Method::Auto, Method::Counting, Method::Marking, Method::Fft, Method::BitParallel];

fn check_all(t: &[u64], p: &[u64]) {
    let want = oracle(t, p);
    for meth in METHODS {
        assert_eq!(hamming_distances(t, p, meth).unwrap(), want, "{meth:?}");
    }
    for k in [0usize, 1, 3, p.len()] {
        let clamped: Vec<u32> = want.iter().map(|&d| d.min(k as u32 + 1)).collect();
        for km in [KMethod::Auto, KMethod::Filter, KMethod::Full(Method::Counting)] {
            assert_eq!(k_mismatch(t, p, k, km).unwrap(), clamped, "k={k} {km:?}");
        }
    }
}

fn sumset_oracle(a: &[i64], b: &[i64]) -> (Vec<i64>, Vec<u64>) {
    let mut m = std::collections::BTreeMap::new();
    for &x in a {
        for &y in b {
            *m.entry(x + y).or_insert(0u64) += 1;
        }
    }
    (m.keys().copied().collect(), m.values().copied().collect())
}

#[test]
fn all_methods_on_fixed_cases() {
    check_all(&[1, 2, 3, 1, 2, 3, 1], &[1, 2, 3]);
    check_all(&[5; 40], &[5; 7]);
    check_all(&[0, 1, 0, 1], &[0, 1, 0, 1]);
    check_all(&[9], &[9]);
    check_all(&[u64::MAX, 0, u64::MAX], &[u64::MAX]);
    assert_eq!(hamming_distances(&[1, 2], &[1, 2, 3], Method::Auto).unwrap(), Vec::<u32>::new());
    assert!(hamming_distances(&[1, 2], &[], Method::Auto).is_err());
}

#[test]
fn long_text_spans_many_fft_blocks_exactly() {
    // Binary text, large m: FFT blocks are far shorter than the text; counts up to m round exactly.
    let mut x = 12345u64;
    let t: Vec<u64> = (0..60_000)
        .map(|_| {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((x >> 60) == 0) as u64
        })
        .collect();
    let p: Vec<u64> = t[1000..1000 + 3000].to_vec();
    let want = oracle(&t, &p);
    for meth in METHODS {
        assert_eq!(hamming_distances(&t, &p, meth).unwrap(), want, "{meth:?}");
    }
    let ones = vec![0u64; 5000];
    let z = vec![0u64; 20000];
    assert!(hamming_distances(&z, &ones, Method::Fft).unwrap().iter().all(|&d| d == 0));
}

#[test]
fn repetition_finds_smallest_period() {
    let t: Vec<u64> = (0..200).map(|i| (i % 7) as u64).collect();
    assert_eq!(find_repetition(&t, 20, 0).unwrap(), Some(7));
    let mut u = t.clone();
    u[195] = 99;
    assert_eq!(find_repetition(&u, 20, 0).unwrap(), None);
    assert_eq!(find_repetition(&u, 20, 1).unwrap(), Some(7));
    let v: Vec<u64> = (0..300).map(|i| if i < 150 { i as u64 } else { (i % 100) as u64 + 1000 }).collect();
    assert_eq!(find_repetition(&v, 30, 0).unwrap(), Some(100));
    assert_eq!(find_repetition(&v, 300, 0).unwrap(), None);
}

#[test]
fn sumset_methods_agree() {
    let cases: Vec<(Vec<i64>, Vec<i64>)> = vec![
        (vec![0, 1, 5], vec![2, 2, 9]),
        (vec![-5, 3, 3, 100], vec![-7, 0]),
        (vec![i64::MAX - 3], vec![1, 2]),
        (vec![1 << 40, 3], vec![7, 1 << 41]),
    ];
    for (a, b) in cases {
        let (s, c) = sumset_oracle(&a, &b);
        for meth in [
            SumsetMethod::Auto,
            SumsetMethod::Pairs,
            SumsetMethod::Radix,
            SumsetMethod::Fft,
            SumsetMethod::ShiftOr,
        ] {
            match sumset(&a, &b, true, meth) {
                Ok(r) => {
                    assert_eq!(r.sums, s, "{meth:?}");
                    assert_eq!(r.counts.unwrap(), c, "{meth:?}");
                    assert_eq!(sumset(&a, &b, false, meth).unwrap().sums, s, "{meth:?}");
                }
                Err(e) => assert!(matches!(e, CoreError::LimitExceeded { .. }), "{meth:?}: {e}"),
            }
        }
    }
    assert!(sumset(&[i64::MAX], &[1], false, SumsetMethod::Auto).is_err());
}

#[test]
fn approx_zero_exactly_and_close() {
    let t: Vec<u64> = (0..300).map(|i| (i * 7 % 13) as u64).collect();
    let p = t[10..40].to_vec();
    let want = oracle(&t, &p);
    let got = hamming_distances_approx(&t, &p, 0.5, 1, 0.05).unwrap();
    for (g, w) in got.iter().zip(&want) {
        if *w == 0 {
            assert_eq!(*g, 0.0);
        } else {
            assert!(*g >= 1.0);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn engines_match_oracle(sigma in 1u64..6, t in proptest::collection::vec(0u64..6, 1..300),
                            m in 1usize..40, huge in any::<bool>()) {
        let map = |x: u64| if huge { (x % sigma) * (1 << 61) + 7 } else { x % sigma };
        let t: Vec<u64> = t.into_iter().map(map).collect();
        let m = m.min(t.len());
        let p: Vec<u64> = t.iter().rev().take(m).copied().collect();
        check_all(&t, &p);
    }

    #[test]
    fn sumset_matches_oracle(a in proptest::collection::vec(-300i64..300, 1..30),
                             b in proptest::collection::vec(-50i64..5000, 1..30)) {
        let (s, c) = sumset_oracle(&a, &b);
        for meth in [SumsetMethod::Auto, SumsetMethod::Pairs, SumsetMethod::Radix, SumsetMethod::Fft, SumsetMethod::ShiftOr] {
            let r = sumset(&a, &b, true, meth).unwrap();
            prop_assert_eq!(&r.sums, &s);
            prop_assert_eq!(r.counts.unwrap(), c.clone());
            prop_assert_eq!(sumset(&a, &b, false, meth).unwrap().sums, s.clone());
        }
    }
}

/// Timing of every engine at the sizes (run by hand: `cargo test --release -- --ignored`).
#[test]
#[ignore]
fn calibrate_engines() {
    let mut x = 7u64;
    let mut rnd = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let n = 1_000_000;
    let m = 1000;
    let h: f64 = (1..=65536).map(|k| 1.0 / k as f64).sum();
    let cdf: Vec<f64> = (1..=65536)
        .scan(0.0, |s, k| {
            *s += 1.0 / (k as f64 * h);
            Some(*s)
        })
        .collect();
    for (name, sig) in [("uniform", 0u32), ("zipf", 1), ("binary", 2), ("sigma16", 3)] {
        let t: Vec<u64> = (0..n)
            .map(|_| match sig {
                0 => rnd() % 65536,
                1 => cdf.partition_point(|&c| c < (rnd() >> 11) as f64 / (1u64 << 53) as f64) as u64,
                2 => rnd() % 2,
                _ => rnd() % 16,
            })
            .collect();
        let p = t[5000..5000 + m].to_vec();
        let r = Relabeled::new(&t, &p);
        println!("{name}: plan {} est {:.1} ms", plan(&r).describe(), plan(&r).est_ns() / 1e6);
        for meth in METHODS {
            let t0 = std::time::Instant::now();
            let d = distances_ids(&r, meth).unwrap();
            println!("  {meth:?}: {:.1} ms ({})", t0.elapsed().as_secs_f64() * 1e3, d[5000]);
        }
        for k in [8usize, 64] {
            let t0 = std::time::Instant::now();
            let _ = k_mismatch_ids(&r, k, KMethod::Auto).unwrap();
            println!("  k={k}: {:.1} ms", t0.elapsed().as_secs_f64() * 1e3);
        }
        let t0 = std::time::Instant::now();
        let _ = Relabeled::new(&t, &p);
        println!("  relabel: {:.1} ms", t0.elapsed().as_secs_f64() * 1e3);
    }
    for (u, s) in [(1_000_000i64, 1000usize), (10_000_000, 3162), (1_000_000, 10_000)] {
        let a: Vec<i64> = (0..s).map(|_| (rnd() % u as u64) as i64).collect();
        let b: Vec<i64> = (0..s).map(|_| (rnd() % u as u64) as i64).collect();
        for meth in [
            SumsetMethod::Auto,
            SumsetMethod::Pairs,
            SumsetMethod::Radix,
            SumsetMethod::Fft,
            SumsetMethod::ShiftOr,
        ] {
            let t0 = std::time::Instant::now();
            let r = sumset(&a, &b, false, meth).map(|r| r.sums.len());
            println!(
                "sumset U={u} s={s} {meth:?}: {:.1} ms {:?}",
                t0.elapsed().as_secs_f64() * 1e3,
                r.is_ok()
            );
        }
    }
}
