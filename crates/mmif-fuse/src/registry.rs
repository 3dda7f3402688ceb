//! The one typed registry of what mmif runs: the networks (name, tasks, inputs, checkpoints,
//! how a checkpoint is recognised, its official layout, the smallest image it fuses, what it is
//! used for) and, generically, the weight-free methods of `mmif_classic::all()`.
//!
//! Every command names models through [`Network`] (a clap value enum with the `clap` feature) or
//! [`Model`] (a network or a weight-free method, see [`Model::parse`]); no other file spells a
//! model's name. A new
//! weight-free method only needs an entry in `mmif_classic`'s list (its `MethodInfo` and its
//! `Method: FromStr`) to appear in `mmif models`, `mmif fuse` and `mmif bench`.

use std::fmt;

use crate::memory::PeakModel;

/// A network mmif implements, as named on the command line (`-m cddfuse`, …).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum Network {
    /// CDDFuse (Zhao et al., CVPR 2023).
    Cddfuse,
    /// EMMA's U-Fuser (Zhao et al., CVPR 2024).
    Emma,
    /// EMMA's infrared pseudo-sensor `A_i` (a UNet5).
    EmmaAi,
    /// EMMA's visible pseudo-sensor `A_v` (a UNet5).
    EmmaAv,
    /// FILM (Zhao et al., ICML 2024).
    Film,
}

/// How a network's official checkpoint stores its state dict (what `mmif convert` writes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// One `DataParallel` state dict (`module.` keys) per top-level module, keyed by its name
    /// (CDDFuse's `DIDF_Encoder`, `DIDF_Decoder`, `BaseFuseLayer`, `DetailFuseLayer`).
    Groups(&'static [&'static str]),
    /// The bare state dict (EMMA's `EMMA.pth`, `Ai.pth`, `Av.pth`).
    Bare,
    /// `{"model": state dict}`, with `module.` keys in `.pth` and plain keys in Jittor `.pkl`
    /// (FILM; the only network with a Jittor port).
    Model,
}

/// What the registry knows about a network.
#[derive(Clone, Copy, Debug)]
pub struct NetworkInfo {
    pub network: Network,
    /// Tasks its official checkpoints cover (`mmif models`).
    pub tasks: &'static str,
    /// How the named sources map to its inputs (`mmif models`).
    pub inputs: &'static str,
    /// Its official checkpoints.
    pub weights: &'static str,
    pub about: &'static str,
    /// A key prefix only its official state dict has (checkpoint recognition).
    pub key_prefix: &'static str,
    pub layout: Layout,
    /// The smallest side (pixels) of an image it takes, where the network checks one (its own
    /// error message reports it; `mmif models` lists it).
    pub min_side: Option<usize>,
    /// Fuses two sources (`mmif fuse`, `mmif bench`); otherwise maps one image (`mmif sense`).
    pub fuses: bool,
    /// Its peak memory against the pixels of one pass, fitted to `mmif bench` (fusing networks;
    /// `mmif fuse` refuses images whose estimate exceeds the available memory).
    pub peak: Option<PeakModel>,
    /// Guided by per-pair text features (`--text`, `--text-dir`), or by captions encoded with
    /// BLIP-2's text encoder (`--text-encoder` with `--caption`, `--caption-file`, `--caption-dir`).
    pub text: bool,
}

/// Peak-memory models: the line through the peak RSS of `mmif --threads 2 bench -m M --size S
/// --runs 1` at 256×256 and at 768×1024 (one process per size), per-pixel part rounded up
/// (`docs/hostile_inputs.md`).
const CDDFUSE_PEAK: PeakModel = PeakModel { base: 17_000_000, per_pixel: 2841 };
const EMMA_PEAK: PeakModel = PeakModel { base: 17_000_000, per_pixel: 362 };
/// FILM's Restormer blocks run in bands above about one megapixel, so its peak grows more slowly
/// there (1148 and 1202 bytes a pixel between the bench points at 768×1024, 1024×1536 and
/// 2048×1536: 1250.1, 2153.0 and 4044.1 MB): the line with the steeper slope, rounded up, raised
/// to lie above all four points (2 % above the 2048×1536 peak; the former line through 256×256
/// and 768×1024, 144 MB + 1407 · pixels, was 13 % above it).
const FILM_PEAK: PeakModel = PeakModel { base: 320_000_000, per_pixel: 1210 };

/// Every network, in `mmif models` order.
pub const NETWORKS: &[NetworkInfo] = &[
    NetworkInfo {
        network: Network::Cddfuse,
        tasks: "IVF, MIF",
        inputs: "VIS side = visible (IVF) or MRI (MIF); IR side = the other source",
        weights: "CDDFuse_IVF.pth / CDDFuse_MIF.pth (official), or .safetensors",
        about: "CDDFuse (Zhao et al., CVPR 2023); --residual vis|sum|none",
        key_prefix: "DIDF_Encoder.",
        layout: Layout::Groups(&["DIDF_Encoder", "DIDF_Decoder", "BaseFuseLayer", "DetailFuseLayer"]),
        min_side: Some(mmif_nn::cddfuse::MIN_SIDE),
        fuses: true,
        peak: Some(CDDFUSE_PEAK),
        text: false,
    },
    NetworkInfo {
        network: Network::Emma,
        tasks: "IVF, MIF",
        inputs: "i side = infrared (IVF) or CT/PET/SPECT (MIF); v side = visible (IVF) or MRI (MIF)",
        weights: "EMMA.pth (official), or .safetensors",
        about: "EMMA (Zhao et al., CVPR 2024); --tiling official|pad|tile, --tile N, --overlap K",
        key_prefix: "V_en_1.",
        layout: Layout::Bare,
        min_side: Some(mmif_nn::emma::MULTIPLE),
        fuses: true,
        peak: Some(EMMA_PEAK),
        text: false,
    },
    NetworkInfo {
        network: Network::Film,
        tasks: "all",
        inputs: "imageA = ir / mri / over / near, imageB = vis / func / under / far; text features --text / --text-dir, \
                 or captions --text-encoder CKPT with --caption / --caption-file / --caption-dir",
        weights: "IVF.pth / MIF.pth / MEF.pth / MFF.pth (official), the Jittor .pkl, or .safetensors",
        about: "FILM (Zhao et al., ICML 2024): fusion guided by the scene's text features (T×768 .npy)",
        key_prefix: "restormerca1.",
        layout: Layout::Model,
        min_side: None,
        fuses: true,
        peak: Some(FILM_PEAK),
        text: true,
    },
    NetworkInfo {
        network: Network::EmmaAi,
        tasks: "IVF",
        inputs: "one image (mmif sense) → infrared-like",
        weights: "Ai.pth (official), or .safetensors",
        about: "EMMA's infrared pseudo-sensor A_i (UNet5); mmif sense, mmif train",
        key_prefix: "down1.conv.",
        layout: Layout::Bare,
        min_side: Some(mmif_nn::emma::UNET5_MULTIPLE),
        fuses: false,
        peak: None,
        text: false,
    },
    NetworkInfo {
        network: Network::EmmaAv,
        tasks: "IVF",
        inputs: "one image (mmif sense) → visible-like",
        weights: "Av.pth (official), or .safetensors",
        about: "EMMA's visible pseudo-sensor A_v (UNet5); mmif sense, mmif train",
        key_prefix: "down1.conv.",
        layout: Layout::Bare,
        min_side: Some(mmif_nn::emma::UNET5_MULTIPLE),
        fuses: false,
        peak: None,
        text: false,
    },
];

impl Network {
    /// The registry entry of this network.
    pub fn info(self) -> &'static NetworkInfo {
        NETWORKS.iter().find(|n| n.network == self).expect("every network has a registry entry")
    }

    /// The name on the command line (`emma-ai`, …).
    pub fn name(self) -> &'static str {
        match self {
            Network::Cddfuse => "cddfuse",
            Network::Emma => "emma",
            Network::EmmaAi => "emma-ai",
            Network::EmmaAv => "emma-av",
            Network::Film => "film",
        }
    }

    /// The network whose official state dict has these (canonical) keys: the first entry whose
    /// key prefix occurs (the two pseudo-sensors share one architecture and are told apart by
    /// nothing in their weights, so a UNet5 is reported as `emma-ai`; both have the same layout).
    pub fn recognise(sd: &mmif_nn::StateDict) -> Option<Network> {
        NETWORKS.iter().find(|n| sd.keys().any(|k| k.starts_with(n.key_prefix))).map(|n| n.network)
    }

    /// The networks with this layout, named for messages (`cddfuse, emma, …`).
    pub fn names_with(pred: impl Fn(&NetworkInfo) -> bool) -> String {
        NETWORKS.iter().filter(|n| pred(n)).map(|n| n.network.name()).collect::<Vec<_>>().join(", ")
    }
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

/// What `mmif fuse` and `mmif bench` run: a network, or a weight-free method of `mmif_classic`
/// with its textual parameters (`weighted:0.3`, `lp:5`; parsed by `mmif_classic::Method`).
#[derive(Clone, Debug, PartialEq)]
pub enum Model {
    Network(Network),
    Classic(String),
}

impl Model {
    /// The model's name (a classic method's specification as given, lower case).
    pub fn name(&self) -> &str {
        match self {
            Model::Network(n) => n.name(),
            Model::Classic(spec) => spec,
        }
    }

    /// The registry entry of a network; `None` for a weight-free method.
    pub fn network(&self) -> Option<&'static NetworkInfo> {
        match self {
            Model::Network(n) => Some(n.info()),
            Model::Classic(_) => None,
        }
    }

    /// Whether the model is guided by per-pair text features.
    pub fn uses_text(&self) -> bool {
        self.network().is_some_and(|n| n.text)
    }
}

impl fmt::Display for Model {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

/// Why a model name was refused by [`Model::parse`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ModelNameError {
    /// Neither a fusing network nor a weight-free method.
    Unknown,
    /// A network given a `:parameter` (only weight-free methods take one).
    NetworkWithParameter,
}

impl Model {
    /// Every name `-m` accepts: the fusing networks, then the weight-free methods.
    pub fn names() -> Vec<&'static str> {
        let networks = NETWORKS.iter().filter(|n| n.fuses).map(|n| n.network.name());
        networks.chain(mmif_classic::all().into_iter().map(|m| m.name)).collect()
    }

    /// Parses a model name (case-insensitive): a network that fuses, or a weight-free method of
    /// `mmif_classic::all()`, optionally with its textual parameter (`weighted:0.3`; checked when
    /// the model is built).
    pub fn parse(text: &str) -> Result<Model, ModelNameError> {
        let text = text.trim().to_ascii_lowercase();
        let (name, param) = match text.split_once(':') {
            Some((n, p)) => (n.trim().to_string(), Some(p)),
            None => (text.clone(), None),
        };
        if !Model::names().contains(&name.as_str()) {
            return Err(ModelNameError::Unknown);
        }
        match NETWORKS.iter().find(|n| n.fuses && n.network.name() == name) {
            Some(n) if param.is_none() => Ok(Model::Network(n.network)),
            Some(_) => Err(ModelNameError::NetworkWithParameter),
            None => Ok(Model::Classic(text)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_fusing_network_has_a_peak_memory_model() {
        for n in NETWORKS {
            assert_eq!(n.peak.is_some_and(|p| p.per_pixel > 0), n.fuses, "{}", n.network);
        }
    }

    #[test]
    fn parses_networks_and_methods_with_parameters() {
        assert_eq!(Model::parse("CDDFuse"), Ok(Model::Network(Network::Cddfuse)));
        assert_eq!(Model::parse("weighted:0.3"), Ok(Model::Classic("weighted:0.3".into())));
        assert_eq!(Model::parse("nonsense"), Err(ModelNameError::Unknown));
        assert_eq!(Model::parse("emma-ai"), Err(ModelNameError::Unknown), "a pseudo-sensor does not fuse");
        assert_eq!(Model::parse("film:2"), Err(ModelNameError::NetworkWithParameter));
    }

    #[test]
    fn weight_free_methods_come_from_mmif_classic() {
        let names = Model::names();
        for m in mmif_classic::all() {
            assert!(names.contains(&m.name), "{}", m.name);
        }
        assert!(names.contains(&"cddfuse") && !names.contains(&"emma-ai"));
    }
}
