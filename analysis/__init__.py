"""What uses the model: trace store, bench runner, calibration, validation, sweeps, report, CLI."""
