//! The registry of networks and methods lives in `mmif_fuse::registry` (shared with the Python
//! package); this module re-exports it and adds the command line's `-m NAME` parser.

use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
pub use mmif_fuse::registry::*;

/// Parses `-m NAME` (case-insensitive) with [`Model::parse`]: a network that fuses, or a
/// weight-free method of `mmif_classic::all()`, optionally with its textual parameter
/// (`weighted:0.3`). `--help` and error messages list the names.
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
        match Model::parse(&text) {
            Ok(m) => Ok(m),
            Err(ModelNameError::Unknown) => {
                // clap's own message, listing the names (only the name is checked, not the parameter)
                let name = text.split_once(':').map_or(text.as_str(), |(n, _)| n.trim());
                let names = PossibleValuesParser::new(Model::names().into_iter().map(PossibleValue::new));
                names.parse_ref(cmd, arg, std::ffi::OsStr::new(name))?;
                unreachable!("clap refuses a name outside the list")
            }
            Err(ModelNameError::NetworkWithParameter) => {
                let mut err = clap::Error::new(clap::error::ErrorKind::ValueValidation).with_cmd(cmd);
                err.insert(
                    clap::error::ContextKind::InvalidArg,
                    clap::error::ContextValue::String(arg.map(|a| a.to_string()).unwrap_or_default()),
                );
                err.insert(clap::error::ContextKind::InvalidValue, clap::error::ContextValue::String(text));
                Err(err)
            }
        }
    }

    fn possible_values(&self) -> Option<Box<dyn Iterator<Item = PossibleValue> + '_>> {
        Some(Box::new(Model::names().into_iter().map(PossibleValue::new)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::ValueEnum;

    #[test]
    fn every_network_has_one_entry_and_its_value_enum_name() {
        for n in Network::value_variants() {
            assert_eq!(NETWORKS.iter().filter(|i| i.network == *n).count(), 1, "{n}");
            let pv = n.to_possible_value().expect("named");
            assert_eq!(pv.get_name(), n.name());
        }
    }

    #[test]
    fn parser_reports_through_clap() {
        let cmd = clap::Command::new("t");
        let p = |s: &str| ModelParser.parse_ref(&cmd, None, std::ffi::OsStr::new(s));
        assert_eq!(p("CDDFuse").expect("network"), Model::Network(Network::Cddfuse));
        assert_eq!(p("weighted:0.3").expect("method"), Model::Classic("weighted:0.3".into()));
        assert!(p("nonsense").is_err());
        assert!(p("film:2").is_err());
    }
}
