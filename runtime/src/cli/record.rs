//! The recording options `omniflow run` and `omniflow demo` share: record accepted messages
//! and sink answers, masked, for `omniflow test --from-recording`.

use omniflow_engine::recording::{mask::Masking, Recorder};
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;

#[derive(clap::Args, Default)]
pub struct RecordArgs {
    /// Record each accepted message (masked) with what the flows make of it, and each
    /// sink's answer, as JSON lines into this new file.
    #[arg(long, value_name = "FILE")]
    record: Option<PathBuf>,
    /// Stop recording after this long (e.g. 10m) [default: until the run stops].
    #[arg(long, value_name = "DURATION", value_parser = omniflow_state::lock::parse_wait, requires = "record")]
    record_for: Option<Duration>,
    /// Also mask the values of keys matching this pattern (`*` for any text; emails,
    /// phones, names, addresses and secrets are masked already). Repeatable.
    #[arg(long, value_name = "PATTERN", requires = "record")]
    mask_key: Vec<String>,
    /// Keep the values of keys matching this pattern (emails and phone numbers in them are
    /// still masked). Repeatable; wins over the defaults and `--mask-key`.
    #[arg(long, value_name = "PATTERN", requires = "record")]
    keep_key: Vec<String>,
}

impl RecordArgs {
    /// The recorder the options ask for, if any.
    pub fn recorder(&self) -> Result<Option<Rc<Recorder>>, String> {
        let Some(path) = &self.record else {
            return Ok(None);
        };
        let masking = Masking::new(&self.mask_key, &self.keep_key);
        Recorder::create(path, self.record_for, masking).map(|r| Some(Rc::new(r)))
    }
}
