//! The one typed registry of what mmif runs: the networks (name, tasks, inputs, checkpoints,
//! how a checkpoint is recognised, its official layout, the smallest image it fuses, what it is
//! used for) and, generically, the weight-free methods of `mmif_classic::all()`.
//!
//! Every command names models through [`Network`] (a clap value enum) or [`Model`] (a network or
//! a weight-free method, parsed by [`model_parser`]); no other file spells a model's name. A new
//! weight-free method only needs an entry in `mmif_classic`'s list (its `MethodInfo` and its
//! `Method: FromStr`) to appear in `mmif models`, `mmif fuse` and `mmif bench`.

use std::fmt;

use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};

use crate::memory::PeakModel;

/// A network mmif implements, as named on the command line (`-m cddfuse`, …).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, clap::ValueEnum)]
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
    /// Guided by per-pair text features (`--text`, `--text-dir`).
    pub text: bool,
}

/// Peak-memory models: the line through the peak RSS of `mmif --threads 2 bench -m M --size S
/// --runs 1` at 256×256 and at 768×1024 (one process per size), per-pixel part rounded up
/// (`docs/hostile_inputs.md`). FILM's blocks run in bands above about 1 megapixel, so its
/// estimate is on the safe side for larger images.
const CDDFUSE_PEAK: PeakModel = PeakModel { base: 17_000_000, per_pixel: 2841 };
const EMMA_PEAK: PeakModel = PeakModel { base: 17_000_000, per_pixel: 362 };
const FILM_PEAK: PeakModel = PeakModel { base: 144_000_000, per_pixel: 1407 };

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
        inputs: "imageA = ir / mri / over / near, imageB = vis / func / under / far; text features --text / --text-dir",
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

/// Every name `mmif fuse -m` accepts: the fusing networks, then the weight-free methods.
fn model_names() -> Vec<PossibleValue> {
    let networks = NETWORKS.iter().filter(|n| n.fuses).map(|n| PossibleValue::new(n.network.name()));
    let methods = mmif_classic::all().into_iter().map(|m| PossibleValue::new(m.name));
    networks.chain(methods).collect()
}

/// Parses `-m NAME` (case-insensitive): a network that fuses, or a weight-free method of
/// `mmif_classic::all()`, optionally with its textual parameter (`weighted:0.3`). `--help` and
/// error messages list the names; the method's parameter is checked when the model is built.
pub fn model_parser() -> impl TypedValueParser<Value = Model> {
    ModelParser
}

#[derive(Clone, Copy, Debug)]
struct ModelParser;

impl TypedValueParser for ModelParser {
    type Value = Model;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<Model, clap::Error> {
        let text = value.to_string_lossy().trim().to_ascii_lowercase();
        let (name, param) = match text.split_once(':') {
            Some((n, p)) => (n.trim().to_string(), Some(p)),
            None => (text.clone(), None),
        };
        // Only the name is checked against the list (the parameter belongs to the method).
        let names = PossibleValuesParser::new(model_names());
        names.parse_ref(cmd, arg, std::ffi::OsStr::new(&name))?;
        Ok(match NETWORKS.iter().find(|n| n.fuses && n.network.name() == name) {
            Some(n) if param.is_none() => Model::Network(n.network),
            Some(_) => {
                let mut err = clap::Error::new(clap::error::ErrorKind::ValueValidation).with_cmd(cmd);
                err.insert(
                    clap::error::ContextKind::InvalidArg,
                    clap::error::ContextValue::String(arg.map(|a| a.to_string()).unwrap_or_default()),
                );
                err.insert(clap::error::ContextKind::InvalidValue, clap::error::ContextValue::String(text));
                return Err(err);
            }
            None => Model::Classic(text),
        })
    }

    fn possible_values(&self) -> Option<Box<dyn Iterator<Item = PossibleValue> + '_>> {
        Some(Box::new(model_names().into_iter()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::ValueEnum;

    #[test]
    fn every_fusing_network_has_a_peak_memory_model() {
        for n in NETWORKS {
            assert_eq!(n.peak.is_some_and(|p| p.per_pixel > 0), n.fuses, "{}", n.network);
        }
    }

    #[test]
    fn every_network_has_one_entry_and_its_value_enum_name() {
        for n in Network::value_variants() {
            assert_eq!(NETWORKS.iter().filter(|i| i.network == *n).count(), 1, "{n}");
            let pv = n.to_possible_value().expect("named");
            assert_eq!(pv.get_name(), n.name());
        }
    }

    #[test]
    fn weight_free_methods_come_from_mmif_classic() {
        let names: Vec<String> = model_names().iter().map(|p| p.get_name().to_string()).collect();
        for m in mmif_classic::all() {
            assert!(names.contains(&m.name.to_string()), "{}", m.name);
        }
        assert!(names.contains(&"cddfuse".to_string()) && !names.contains(&"emma-ai".to_string()));
    }

    #[test]
    fn parses_networks_and_methods_with_parameters() {
        let cmd = clap::Command::new("t");
        let p = |s: &str| ModelParser.parse_ref(&cmd, None, std::ffi::OsStr::new(s));
        assert_eq!(p("CDDFuse").expect("network"), Model::Network(Network::Cddfuse));
        assert_eq!(p("weighted:0.3").expect("method"), Model::Classic("weighted:0.3".into()));
        assert!(p("nonsense").is_err());
        assert!(p("emma-ai").is_err(), "a pseudo-sensor does not fuse");
        assert!(p("film:2").is_err());
    }
}
