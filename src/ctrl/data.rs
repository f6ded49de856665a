//! The data phases of the lifecycle: downloading inputs before the command and uploading
//! outputs after it. Specs are parsed and validated when ctrl starts; moving the data is
//! the transfer engine's job, which is not built yet, so a task that names inputs or
//! outputs fails with a clear message instead of silently running without its data.

use super::exit::{ExitCode, Failure};
use crate::proto::spec;

/// Checks every spec; a bad one is invalid input (exit 30) naming the spec.
pub fn validate(inputs: &[String], outputs: &[String]) -> Result<(), Failure> {
    for s in inputs {
        spec::parse_input(s).map_err(|e| {
            Failure::new(
                ExitCode::InvalidInput,
                format!("Invalid input spec {s:?}: {e}"),
            )
        })?;
    }
    for s in outputs {
        spec::parse_output(s).map_err(|e| {
            Failure::new(
                ExitCode::InvalidInput,
                format!("Invalid output spec {s:?}: {e}"),
            )
        })?;
    }
    Ok(())
}

pub fn download_inputs(inputs: &[String]) -> Result<(), Failure> {
    match inputs.first() {
        None => Ok(()),
        Some(s) => Err(Failure::new(
            ExitCode::DownloadFailed,
            format!("Cannot download {s:?}: this sidewire build has no transfer engine yet"),
        )),
    }
}

pub fn upload_outputs(outputs: &[String]) -> Result<(), Failure> {
    match outputs.first() {
        None => Ok(()),
        Some(s) => Err(Failure::new(
            ExitCode::UploadFailed,
            format!("Cannot upload {s:?}: this sidewire build has no transfer engine yet"),
        )),
    }
}
