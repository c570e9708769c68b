//! The exposition text of every webhook in force: one family per counter,
//! one line per webhook (and per cause of error).

use super::read::Sample;
use super::text::{header, line};
use crate::runtime::CallError;

/// The exposition text of `samples`: one family after the other, each with
/// its `# HELP` and `# TYPE`, every cause of error listed (zero included) so
/// that rates work from the first error on.
pub fn render(samples: &[Sample]) -> String {
    let mut out = String::new();
    family(
        &mut out,
        "edgehook_plugin_calls_total",
        "counter",
        "Plugin calls made (on-event and on-response).",
        samples,
        |s, line| line(&[], s.calls.to_string()),
    );
    family(
        &mut out,
        "edgehook_plugin_errors_total",
        "counter",
        "Plugin calls that failed, by cause.",
        samples,
        |s, line| {
            for cause in CallError::CAUSES {
                let n = s.errors.get(cause).copied().unwrap_or(0);
                line(&[("cause", cause)], n.to_string());
            }
        },
    );
    family(
        &mut out,
        "edgehook_plugin_call_seconds_total",
        "counter",
        "Time plugin calls ran on the host's threads, in seconds.",
        samples,
        |s, line| line(&[], s.call_seconds.to_string()),
    );
    family(
        &mut out,
        "edgehook_plugin_memory_high_water_bytes",
        "gauge",
        "Largest linear memory of any instance of the plugin, in bytes.",
        samples,
        |s, line| line(&[], s.memory_high_water.to_string()),
    );
    family(
        &mut out,
        "edgehook_plugin_log_dropped_bytes_total",
        "counter",
        "Bytes of plugin log and stdout/stderr dropped over the per-call budget.",
        samples,
        |s, line| line(&[], s.log_bytes_dropped.to_string()),
    );
    family(
        &mut out,
        "edgehook_plugin_kv_operations_total",
        "counter",
        "Key-value operations of the plugin that succeeded, by kind (read, write).",
        samples,
        |s, line| {
            line(&[("kind", "read")], s.kv[0].to_string());
            line(&[("kind", "write")], s.kv[1].to_string());
        },
    );
    family(
        &mut out,
        "edgehook_plugin_kv_errors_total",
        "counter",
        "Key-value operations of the plugin that failed (a limit, the store).",
        samples,
        |s, line| line(&[], s.kv[2].to_string()),
    );
    family(
        &mut out,
        "edgehook_plugin_kv_keys",
        "gauge",
        "Keys in the plugin's own key-value bucket (expired ones until they are purged).",
        samples,
        |s, line| {
            if let Some(keys) = s.kv_keys {
                line(&[], keys.to_string());
            }
        },
    );
    family(
        &mut out,
        "edgehook_plugin_suspended",
        "gauge",
        "1 when the plugin is suspended after a run of failed calls.",
        samples,
        |s, line| line(&[], u8::from(s.suspended).to_string()),
    );
    family(
        &mut out,
        "edgehook_webhook_disabled",
        "gauge",
        "1 when the webhook is disabled after a run of failed deliveries.",
        samples,
        |s, line| line(&[], u8::from(s.disabled).to_string()),
    );
    out
}

/// Writes one metric family: its header, then the lines `each` produces
/// for every sample (labelled with the plugin, then the extra labels).
fn family(
    out: &mut String,
    name: &str,
    kind: &str,
    help: &str,
    samples: &[Sample],
    each: impl Fn(&Sample, &mut dyn FnMut(&[(&str, &str)], String)),
) {
    header(out, name, kind, help);
    for sample in samples {
        each(sample, &mut |labels, value| {
            let labels: Vec<(&str, &str)> = [("plugin", sample.plugin.as_str())]
                .into_iter()
                .chain(labels.iter().copied())
                .collect();
            line(out, name, &labels, &value);
        });
    }
}
