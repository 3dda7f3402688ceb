//! `--param key=value`, `name:key=value` and the parameter listing of `mmif models`.

use mmif_classic::{Error, HmsdGfParams, HybridMsdParams, Method, MgffParams, Plane, TifParams, all, tif};

fn ramp(w: usize, h: usize, k: f32) -> Plane {
    Plane::new(w, h, (0..w * h).map(|i| ((i * 37) % 251) as f32 * k).collect())
}

#[test]
fn every_method_lists_its_parameters_with_defaults() {
    for info in all() {
        let m: Method = info.name.parse().unwrap();
        assert_eq!(info.params, m.params(), "{}", info.name);
        assert!(!info.speed.is_empty());
        for p in &info.params {
            assert!(!p.help.is_empty() && !p.value.is_empty(), "{}: {}", info.name, p.key);
            // setting a parameter to its listed default changes nothing
            let mut n = m;
            n.set_param(p.key, &p.value).unwrap();
            assert_eq!(n, m, "{}: {}={}", info.name, p.key, p.value);
        }
    }
    let tif_info = all().into_iter().find(|i| i.name == "tif").unwrap();
    let listed: Vec<(&str, &str)> = tif_info.params.iter().map(|p| (p.key, p.value.as_str())).collect();
    assert_eq!(listed, [("median", "3"), ("mean", "35")]);
}

#[test]
fn set_param_changes_the_method_and_its_result() {
    let mut m: Method = "tif".parse().unwrap();
    m.set_param("mean", "21").unwrap();
    assert_eq!(m, Method::Tif(TifParams { median: 3, mean: 21 }));
    assert_eq!(m.to_string(), "tif:mean=21");
    assert_eq!("tif:mean=21".parse::<Method>().unwrap(), m);
    assert_eq!("TIF: mean = 21 , median=5".parse::<Method>().unwrap(), Method::Tif(TifParams { median: 5, mean: 21 }));
    let (a, b) = (ramp(40, 30, 1.0), Plane::new(40, 30, (0..1200).map(|i| ((i * 91) % 197) as f32).collect()));
    assert_eq!(m.fuse(&a, &b).unwrap(), tif(&a, &b, &TifParams { median: 3, mean: 21 }).unwrap());
    assert_ne!(m.fuse(&a, &b).unwrap(), Method::Tif(TifParams::default()).fuse(&a, &b).unwrap());

    let mut h: Method = "hmsd_gf".parse().unwrap();
    h.set_param("lambda", "500").unwrap();
    assert_eq!(h, Method::HmsdGf(HmsdGfParams { lambda: Some(500.0), ..Default::default() }));
    assert_eq!(h.to_string().parse::<Method>().unwrap(), h);
    h.set_param("lambda", "auto").unwrap();
    assert_eq!(h, Method::HmsdGf(HmsdGfParams::default()));

    let mut w = Method::Weighted(0.5);
    w.set_param("w", "0.25").unwrap();
    assert_eq!(w, Method::Weighted(0.25));
    let mut l: Method = "lp".parse().unwrap();
    l.set_param("levels", "2").unwrap();
    assert_eq!(l, Method::Lp { levels: 2 });
    assert_eq!(
        "mgff:eps=10,radius=3".parse::<Method>().unwrap(),
        Method::Mgff(MgffParams { radius: 3, eps: 10.0, levels: 4 })
    );
}

#[test]
fn unknown_keys_and_bad_values_are_clear_errors() {
    let mut m: Method = "tif".parse().unwrap();
    let e = m.set_param("radius", "3").unwrap_err().to_string();
    assert!(e.contains("radius") && e.contains("median") && e.contains("mean"), "{e}");
    for (k, v) in [("mean", "20"), ("mean", "-1"), ("median", "x"), ("mean", "")] {
        assert!(matches!(m.set_param(k, v), Err(Error::InvalidParameter { method: "tif", .. })), "{k}={v}");
    }
    let mut g: Method = "gff".parse().unwrap();
    let e = g.set_param("r1", "3").unwrap_err().to_string();
    assert!(e.contains("no parameters") || e.contains("r1"), "{e}");
    let mut mg: Method = "mgff".parse().unwrap();
    for (k, v) in [("eps", "0"), ("eps", "nan"), ("radius", "0"), ("levels", "99")] {
        assert!(mg.set_param(k, v).is_err(), "{k}={v}");
    }
    let mut h: Method = "hmsd_gf".parse().unwrap();
    for (k, v) in [("lambda", "-3"), ("gain", "inf"), ("levels", "0")] {
        assert!(h.set_param(k, v).is_err(), "{k}={v}");
    }
    let mut hy: Method = "hybrid_msd".parse().unwrap();
    for (k, v) in [("lambda", "0"), ("sigma", "0.1"), ("sigma", "9"), ("sigma_r", "-1"), ("levels", "7"), ("k", "2")] {
        assert!(matches!(hy.set_param(k, v), Err(Error::InvalidParameter { method: "hybrid_msd", .. })), "{k}={v}");
    }
    for name in ["lp_sr", "rp_sr"] {
        let mut sr: Method = name.parse().unwrap();
        for (k, v) in [("overlap", "8"), ("epsilon", "0"), ("epsilon", "nan"), ("levels", "0"), ("levels", "17")] {
            let e = sr.set_param(k, v).unwrap_err();
            assert!(matches!(&e, Error::InvalidParameter { method, .. } if *method == name), "{name} {k}={v}: {e}");
        }
        sr.set_param("overlap", "4").unwrap();
        assert_eq!(sr.to_string(), format!("{name}:overlap=4"));
    }
    assert!("tif:mean".parse::<Method>().is_err());
    assert!("mgff:foo=1".parse::<Method>().is_err());
    // parameter structs built directly are validated too
    let (a, b) = (ramp(8, 8, 1.0), ramp(8, 8, 0.5));
    assert!(tif(&a, &b, &TifParams { median: 4, mean: 35 }).is_err());
    assert!(Method::Mgff(MgffParams { eps: -1.0, ..Default::default() }).fuse(&a, &b).is_err());
    assert!(Method::HmsdGf(HmsdGfParams { levels: 0, ..Default::default() }).fuse(&a, &b).is_err());
    assert!(Method::HybridMsd(HybridMsdParams { sigma_r: f64::NAN, ..Default::default() }).fuse(&a, &b).is_err());
    // a range sigma so small that the bilateral grid would need more than 4 GiB
    let big = Method::HybridMsd(HybridMsdParams { sigma_r: 1e-9, ..Default::default() });
    let e = big.fuse(&a, &b).unwrap_err().to_string();
    assert!(e.contains("bilateral grid") && e.contains("sigma_r"), "{e}");
}

#[test]
fn non_default_parameters_run_on_small_and_odd_sizes() {
    for (w, h) in [(1, 1), (2, 5), (20, 15), (41, 3)] {
        let (a, b) = (ramp(w, h, 1.0), Plane::new(w, h, (0..w * h).map(|i| ((i * 91) % 197) as f32).collect()));
        for spec in [
            "hmsd_gf:levels=1",
            "hmsd_gf:levels=2,lambda=50,gain=255",
            "hmsd_gf:levels=6",
            "mgff:levels=1,radius=1",
            "mgff:radius=40",
            "tif:median=1,mean=1",
            "tif:median=7,mean=99",
            "hybrid_msd:levels=1",
            "hybrid_msd:levels=6,sigma=0.5,sigma_r=0.5,lambda=3000",
            "lp_sr:levels=1,overlap=0",
            "lp_sr:levels=16,epsilon=5",
            "rp_sr:levels=2,overlap=7,epsilon=0.01",
        ] {
            let m: Method = spec.parse().unwrap();
            let f = m.fuse(&a, &b).unwrap_or_else(|e| panic!("{spec} on {w}x{h}: {e}"));
            assert!(f.data.len() == w * h && f.data.iter().all(|v| v.is_finite()), "{spec} on {w}x{h}");
        }
    }
}
