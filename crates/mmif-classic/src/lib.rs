//! Weight-free image fusion baselines for `mmif`.
//!
//! Every method is a pure function of two same-sized single-channel [`Plane`]s (plus parameters)
//! and returns a plane of that size. Mismatched, empty or malformed inputs give an [`Error`],
//! never a panic; images as small as 1×1 are accepted (multi-scale methods then use as many
//! levels as the size allows, down to plain averaging).
//!
//! | method | function | paper |
//! |---|---|---|
//! | `mean`, `max`, `weighted` | [`mean`], [`max`], [`weighted`] | pixel-level rules |
//! | `lp` | [`lp()`] | Burt & Adelson 1983; Burt & Kolczynski 1993 |
//! | `gff` | [`gff()`], [`gff_with`] | Li, Kang & Hu, IEEE TIP 2013 |
//! | `dwt` | [`dwt()`] | Li, Manjunath & Mitra 1995; Cohen, Daubechies & Feauveau 1992 |
//! | `adf` | [`adf()`], [`adf_with`] | Bavirisetti & Dhuli, IEEE Sensors J. 2016 (VIFB's code) |
//! | `cbf` | [`cbf()`], [`cbf_with`] | Shreyamsha Kumar, SIViP 2015 (VIFB's code) |
//! | `vsmwls` | [`vsmwls()`], [`vsmwls_with`] | Ma, Zhou, Wang & Zong, Infrared Phys. Technol. 2017 (VIFB's code) |
//! | `ifevip` | [`ifevip()`], [`ifevip_channels`] | Zhang, Zhang, Bai & Zhang, Infrared Phys. Technol. 2017 (VIFB's code) |
//! | `gfce` | [`gfce()`], [`gfce_with`] | Zhou, Dong, Xie & Gao, Appl. Opt. 2016 (VIFB's code) |
//! | `fpde` | [`fpde()`], [`fpde_with`] | Bavirisetti, Xiao & Liu, Fusion 2017 (VIFB's code) |
//! | `tif` | [`tif()`] | Bavirisetti & Dhuli, Infrared Phys. Technol. 2016 (VIFB's code) |
//! | `mgff` | [`mgff()`] | Bavirisetti et al., Circuits Syst. Signal Process. 2019 (VIFB's code) |
//! | `gtf` | [`gtf()`], [`gtf_channels`], [`gtf_color`] | Ma, Chen, Li & Huang, Information Fusion 2016 (VIFB's code) |
//! | `latlrr` | [`latlrr()`], [`latlrr_with_projection`], [`learn_projection`] | Li & Wu 2018 / MDLatLRR, Li, Wu & Kittler, IEEE TIP 2020 (VIFB's code) |
//! | `hmsd_gf` | [`hmsd_gf()`] | Zhou et al., Applied Optics 2016 (VIFB's code) |
//! | `hybrid_msd` | [`hybrid_msd()`] | Zhou, Wang, Li & Dong, Information Fusion 2016 (VIFB's code) |
//! | `msvd` | [`msvd()`] | Naidu, Defence Science Journal 2011 (VIFB's code; aligned singular-vector signs) |
//! | `lp_sr`, `rp_sr` | [`lp_sr()`], [`rp_sr()`], [`mst_sr_with_dictionary`] | Liu, Liu & Wang, Information Fusion 2015 (VIFB's code; mmif's K-SVD dictionary) |
//!
//! [`Method`] is the registry (parse by name, describe, fuse); [`default_for`] gives the default
//! method of each task and [`DEFAULT`] (GFF) that of tasks without a measured choice.
//! Values are not assumed to lie in any range, except that GFF's ε parameters are defined for
//! intensities on `[0, 1]` and the 0..=255 convention is used to get there
//! ([`GffParams::intensity_scale`]).

pub mod adf;
mod basic;
pub mod cbf;
pub mod dwt;
mod error;
pub mod fpde;
pub mod gfce;
pub mod gff;
mod grid;
pub mod gtf;
pub mod hmsd_gf;
pub mod hybrid_msd;
pub mod ifevip;
mod kl;
pub mod latlrr;
pub mod lp;
mod matlab;
mod method;
pub mod mgff;
pub mod mst_sr;
pub mod msvd;
mod octave_resize;
pub mod params;
mod perceptual;
pub mod sr;
pub mod tif;
pub mod vsmwls;

pub use adf::{AdfParams, Conduction, adf, adf_with};
pub use basic::{max, mean, weighted};
pub use cbf::{CbfParams, cbf, cbf_with};
pub use dwt::dwt;
pub use error::{Error, Result};
pub use fpde::{FpdeParams, fpde, fpde_with};
pub use gfce::{GfceParams, gfce, gfce_with};
pub use gff::{GffParams, gff, gff_with};
pub use gtf::{GtfParams, gtf, gtf_channels, gtf_color, gtf_with};
pub use hmsd_gf::{HmsdGfParams, hmsd_gf};
pub use hybrid_msd::{HybridMsdParams, hybrid_msd};
pub use ifevip::{IfevipParams, ifevip, ifevip_channels, ifevip_with};
pub use latlrr::{LatLrrParams, Projection, latlrr, latlrr_with, latlrr_with_projection, learn_projection};
pub use lp::{lp, max_levels};
pub use method::{DEFAULT, Method, MethodInfo, TaskKind, all, default_for};
pub use mgff::{MgffParams, mgff};
pub use mmif_io::Plane;
pub use mst_sr::{MstSrParams, Pyramid, lp_sr, mst_sr_with_dictionary, rp_sr};
pub use msvd::{MsvdParams, msvd};
pub use params::{ParamInfo, Params};
pub use sr::Dictionary;
pub use tif::{TifParams, tif};
pub use vsmwls::{VsmwlsParams, vsmwls, vsmwls_with};

/// Checks that both planes are well formed, non-empty and of the same size.
pub(crate) fn check_pair(a: &Plane, b: &Plane) -> Result<()> {
    for (which, p) in [('a', a), ('b', b)] {
        let expected = p.width.checked_mul(p.height);
        if expected != Some(p.data.len()) {
            return Err(Error::BadPlane {
                which,
                width: p.width,
                height: p.height,
                len: p.data.len(),
                expected: expected.unwrap_or(usize::MAX),
            });
        }
        if p.data.is_empty() {
            return Err(Error::Empty { which, width: p.width, height: p.height });
        }
    }
    if !a.same_size(b) {
        return Err(Error::SizeMismatch { a_width: a.width, a_height: a.height, b_width: b.width, b_height: b.height });
    }
    Ok(())
}
