//! Training for the mmif networks: the official losses ([`losses`]), optimisation with
//! PyTorch's exact arithmetic ([`optim`]), datasets ([`dataset`], [`prepare`],
//! [`prepare_film`]), the training procedures ([`cddfuse`], [`emma`], [`film`]) and the
//! resumable run loop around any of them ([`trainer`], [`run`]).
//!
//! Training runs on burn's autodiff device (`mmif_nn::cpu().autodiff()`); every loss takes
//! and returns burn tensors so the whole objective back-propagates.

pub mod cddfuse;
pub mod dataset;
pub mod emma;
pub mod film;
pub mod losses;
pub mod optim;
pub mod prepare;
pub mod prepare_film;
pub mod run;
pub mod trainer;
pub mod transforms;
pub mod update;
