"""The spiking CNN: architecture, training, quantization, conversion to CRI, model files."""
