//! The BERT encoder (Devlin et al., NAACL 2019, Figure 1; the encoder of Vaswani et al. 2017), as
//! the BLIP-2 Q-Former runs it on text alone: LAVIS's `Blip2Qformer.extract_features(mode="text")`
//! is `Qformer.bert(input_ids, attention_mask).last_hidden_state`, i.e. this encoder with no query
//! tokens (the Q-Former's cross-attention and `*_query` feed-forward layers are not used on text),
//! and Hugging Face's `BertModel(...).last_hidden_state` is the same computation with the
//! token-type embedding of segment 0 added (BLIP-2 has no token-type embedding).
//!
//! ```text
//!  token ids ─► word embedding ─┐
//!  positions ─► position embedding ─► + ─► LayerNorm ─► x
//!  (segment 0 ─► token-type embedding ─┘, plain BERT only)
//!
//!  N × ┌ x ─► multi-head self-attention ─► dense ─► + x ─► LayerNorm ─► a
//!      └ a ─► dense ─► GELU ─► dense ─► + a ─► LayerNorm ─► x      (post-LN)
//!
//!  x: the last hidden state, T × hidden
//! ```
//!
//! One paragraph at a time, so there is no padding and the attention mask is all ones (LAVIS's
//! extended mask then adds zero). LayerNorm ε is the checkpoint's `layer_norm_eps` (1e-12 for
//! BERT and BLIP-2); GELU is the exact (erf) one of BERT's `hidden_act = "gelu"`. Dropout is
//! inference's identity.

use burn::module::Param;
use burn::tensor::{Device, Int, Tensor, TensorData as BurnData, activation};

use crate::layers::Linear;

/// The architecture of a BERT encoder (Hugging Face `BertConfig` names).
#[derive(Clone, Debug, PartialEq)]
pub struct BertConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    pub max_position_embeddings: usize,
    /// Rows of the token-type embedding; 0 when the checkpoint has none (BLIP-2's Q-Former).
    pub type_vocab_size: usize,
    pub layer_norm_eps: f64,
}

impl BertConfig {
    /// Width of one attention head.
    pub fn head_size(&self) -> usize {
        self.hidden_size / self.num_attention_heads
    }

    /// Every parameter the encoder reads, by its key in a plain BERT state dict (Hugging Face
    /// `BertModel` without the `bert.` prefix), with its shape.
    pub fn parameters(&self) -> Vec<(String, Vec<usize>)> {
        let (h, i) = (self.hidden_size, self.intermediate_size);
        let mut p = vec![
            ("embeddings.word_embeddings.weight".to_string(), vec![self.vocab_size, h]),
            ("embeddings.position_embeddings.weight".to_string(), vec![self.max_position_embeddings, h]),
        ];
        if self.type_vocab_size > 0 {
            p.push(("embeddings.token_type_embeddings.weight".to_string(), vec![self.type_vocab_size, h]));
        }
        p.push(("embeddings.LayerNorm.weight".to_string(), vec![h]));
        p.push(("embeddings.LayerNorm.bias".to_string(), vec![h]));
        for l in 0..self.num_hidden_layers {
            let dense = |p: &mut Vec<(String, Vec<usize>)>, name: &str, dout: usize, din: usize| {
                p.push((format!("encoder.layer.{l}.{name}.weight"), vec![dout, din]));
                p.push((format!("encoder.layer.{l}.{name}.bias"), vec![dout]));
            };
            dense(&mut p, "attention.self.query", h, h);
            dense(&mut p, "attention.self.key", h, h);
            dense(&mut p, "attention.self.value", h, h);
            dense(&mut p, "attention.output.dense", h, h);
            p.push((format!("encoder.layer.{l}.attention.output.LayerNorm.weight"), vec![h]));
            p.push((format!("encoder.layer.{l}.attention.output.LayerNorm.bias"), vec![h]));
            dense(&mut p, "intermediate.dense", i, h);
            dense(&mut p, "output.dense", h, i);
            p.push((format!("encoder.layer.{l}.output.LayerNorm.weight"), vec![h]));
            p.push((format!("encoder.layer.{l}.output.LayerNorm.bias"), vec![h]));
        }
        p
    }
}

/// LayerNorm over the last (feature) axis, `nn.LayerNorm(hidden, eps)`.
#[derive(Debug)]
struct LayerNorm {
    weight: Tensor<1>,
    bias: Tensor<1>,
    eps: f64,
}

impl LayerNorm {
    fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let h = x.dims()[2];
        let centred = x.clone() - x.mean_dim(2);
        let var = centred.clone().square().mean_dim(2);
        let normed = centred * (var + self.eps).sqrt().recip();
        normed * self.weight.clone().reshape([1, 1, h]) + self.bias.clone().reshape([1, 1, h])
    }
}

/// Multi-head self-attention with its output projection: `softmax(q kᵀ / √d) v`, heads
/// concatenated, then `dense`.
#[derive(Debug)]
struct SelfAttention {
    query: Linear,
    key: Linear,
    value: Linear,
    dense: Linear,
    heads: usize,
}

impl SelfAttention {
    fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let [b, t, h] = x.dims();
        let d = h / self.heads;
        let split = |y: Tensor<3>| y.reshape([b, t, self.heads, d]).swap_dims(1, 2);
        let q = split(self.query.forward(x.clone()));
        let k = split(self.key.forward(x.clone()));
        let v = split(self.value.forward(x));
        crate::flops::add(2 * crate::flops::matmul(b * self.heads, t, d, t));
        let scores = q.matmul(k.swap_dims(2, 3)) * (1.0 / (d as f64).sqrt());
        let context = activation::softmax(scores, 3).matmul(v);
        self.dense.forward(context.swap_dims(1, 2).reshape([b, t, h]))
    }
}

/// One encoder layer: attention and feed-forward sub-layers, each added to its input and
/// normalised (post-LN).
#[derive(Debug)]
struct EncoderLayer {
    attention: SelfAttention,
    attention_norm: LayerNorm,
    intermediate: Linear,
    output: Linear,
    output_norm: LayerNorm,
}

impl EncoderLayer {
    fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let a = self.attention_norm.forward(self.attention.forward(x.clone()) + x);
        let ffn = self.output.forward(activation::gelu(self.intermediate.forward(a.clone())));
        self.output_norm.forward(ffn + a)
    }
}

/// The BERT encoder with its weights (see the module documentation).
#[derive(Debug)]
pub struct BertEncoder {
    config: BertConfig,
    word_embeddings: Tensor<2>,
    position_embeddings: Tensor<2>,
    token_type_embeddings: Option<Tensor<2>>,
    embeddings_norm: LayerNorm,
    layers: Vec<EncoderLayer>,
    device: Device,
}

/// Parameters handed out by key, as burn tensors.
struct Params<'a> {
    shapes: std::collections::BTreeMap<String, Vec<usize>>,
    take: &'a mut dyn FnMut(&str) -> Vec<f32>,
    device: &'a Device,
}

impl Params<'_> {
    fn data(&mut self, key: &str) -> BurnData {
        let shape = self.shapes.get(key).unwrap_or_else(|| panic!("{key} is not a BERT parameter")).clone();
        BurnData::new((self.take)(key), shape)
    }

    fn t1(&mut self, key: &str) -> Tensor<1> {
        Tensor::from_data(self.data(key), self.device)
    }

    fn t2(&mut self, key: &str) -> Tensor<2> {
        Tensor::from_data(self.data(key), self.device)
    }

    fn linear(&mut self, name: &str) -> Linear {
        Linear {
            weight: Param::from_tensor(self.t2(&format!("{name}.weight"))),
            bias: Param::from_tensor(self.t1(&format!("{name}.bias"))),
        }
    }

    fn norm(&mut self, prefix: &str, eps: f64) -> LayerNorm {
        LayerNorm {
            weight: self.t1(&format!("{prefix}.LayerNorm.weight")),
            bias: self.t1(&format!("{prefix}.LayerNorm.bias")),
            eps,
        }
    }
}

/// Why token ids cannot be encoded.
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    #[error("no tokens to encode")]
    Empty,
    #[error("{tokens} tokens, more than the encoder's {max} positions")]
    TooLong { tokens: usize, max: usize },
    #[error("token id {id} is outside the encoder's vocabulary of {vocab}")]
    UnknownId { id: u32, vocab: usize },
}

impl BertEncoder {
    /// Builds the encoder from its parameters: `take(key)` returns the row-major values of each
    /// key of [`BertConfig::parameters`] (the caller has checked their shapes).
    pub fn new(config: BertConfig, device: &Device, mut take: impl FnMut(&str) -> Vec<f32>) -> Self {
        let shapes: std::collections::BTreeMap<String, Vec<usize>> = config.parameters().into_iter().collect();
        let mut p = Params { shapes, take: &mut take, device };
        let eps = config.layer_norm_eps;
        let embeddings_norm = p.norm("embeddings", eps);
        let word_embeddings = p.t2("embeddings.word_embeddings.weight");
        let position_embeddings = p.t2("embeddings.position_embeddings.weight");
        let token_type_embeddings =
            (config.type_vocab_size > 0).then(|| p.t2("embeddings.token_type_embeddings.weight"));
        let layers = (0..config.num_hidden_layers)
            .map(|l| {
                let l = format!("encoder.layer.{l}");
                EncoderLayer {
                    attention: SelfAttention {
                        query: p.linear(&format!("{l}.attention.self.query")),
                        key: p.linear(&format!("{l}.attention.self.key")),
                        value: p.linear(&format!("{l}.attention.self.value")),
                        dense: p.linear(&format!("{l}.attention.output.dense")),
                        heads: config.num_attention_heads,
                    },
                    attention_norm: p.norm(&format!("{l}.attention.output"), eps),
                    intermediate: p.linear(&format!("{l}.intermediate.dense")),
                    output: p.linear(&format!("{l}.output.dense")),
                    output_norm: p.norm(&format!("{l}.output"), eps),
                }
            })
            .collect();
        Self {
            config,
            word_embeddings,
            position_embeddings,
            token_type_embeddings,
            embeddings_norm,
            layers,
            device: device.clone(),
        }
    }

    pub fn config(&self) -> &BertConfig {
        &self.config
    }

    /// The last hidden state `1×T×hidden` of one sequence of token ids (special tokens
    /// included, e.g. `[CLS] … [SEP]`).
    pub fn forward(&self, ids: &[u32]) -> Result<Tensor<3>, EncodeError> {
        let t = ids.len();
        if t == 0 {
            return Err(EncodeError::Empty);
        }
        if t > self.config.max_position_embeddings {
            return Err(EncodeError::TooLong { tokens: t, max: self.config.max_position_embeddings });
        }
        if let Some(&id) = ids.iter().find(|&&id| id as usize >= self.config.vocab_size) {
            return Err(EncodeError::UnknownId { id, vocab: self.config.vocab_size });
        }
        let h = self.config.hidden_size;
        let index = BurnData::new(ids.iter().map(|&i| i as i64).collect::<Vec<_>>(), [t]);
        let index = Tensor::<1, Int>::from_data(index, &self.device);
        let mut x = self.word_embeddings.clone().select(0, index);
        if let Some(tt) = &self.token_type_embeddings {
            x = x + tt.clone().narrow(0, 0, 1);
        }
        x = x + self.position_embeddings.clone().narrow(0, 0, t);
        let mut x = self.embeddings_norm.forward(x.reshape([1, t, h]));
        for layer in &self.layers {
            x = layer.forward(x);
        }
        Ok(x)
    }
}
