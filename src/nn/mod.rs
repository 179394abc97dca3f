//! The networks of an XHand avatar, in candle: the three pose-conditioned per-vertex
//! embedding MLPs ([`ConditionNet`], bundled as [`EmbeddingNets`]), XHand's `MLP_res` neural
//! renderer ([`NeuralRenderer`]) and the positional encoding that feeds it ([`posenc`]).

mod condition_net;
pub mod fused;
mod host;
mod linear;
pub mod posenc;
mod renderer;
mod softplus;

pub use condition_net::{ConditionNet, EmbeddingNets, Embeddings, NetShape};
pub use fused::Precision;
pub use host::{HostLayer, HostNet};
pub use linear::Linear;
pub use renderer::{
    NeuralRenderer, RENDERER_SKIP_LAYER, renderer_input_width, renderer_layer_shapes,
};
pub use softplus::{LOG1P_IS_IDENTITY_BELOW, SOFTPLUS_BETA, SOFTPLUS_THRESHOLD, softplus100};
