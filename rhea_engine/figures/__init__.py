"""Publication figures of runs and sweeps (`rhea plot`); matplotlib loads only when drawing."""
