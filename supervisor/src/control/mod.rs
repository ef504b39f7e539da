//! The control plane: discovery, manifests, safety gates, enablement, config validation.
