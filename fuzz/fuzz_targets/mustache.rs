//! The mustache engine: any text is parsed; a template that parses is
//! rendered against a small fixed context, against the JSON that follows
//! it in the input, and with itself and a fixed template as partials (which
//! is where a template can multiply its own work).
//!
//! Input: the template, then optionally a `0xff` byte (never in UTF-8) and
//! the JSON context.
#![no_main]

use std::cell::Cell;
use std::collections::HashMap;

use edgehook_particle::template::{Partials, Template};
use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};

fuzz_target!(|data: &[u8]| {
    let (source, context) = match data.iter().position(|&b| b == 0xff) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let Ok(source) = std::str::from_utf8(source) else {
        return;
    };
    let strict = Template::parse_without_partials(source);
    let Ok(template) = Template::parse(source) else {
        assert!(strict.is_err(), "parses only without partials: {source:?}");
        return;
    };
    if let Ok(strict) = strict {
        assert_eq!(strict, template);
    }
    let _ = (
        template.is_literal(),
        template.literal_prefix(),
        template.mentions("a"),
    );

    let fixed = json!({
        "a": [1, 2, 3],
        "b": {"c": "<&>\"'", "d": [true, false, null]},
        "t": true,
        "s": "text",
        "n": 21.10,
        "list": [{"name": "x", "list": []}, {"name": "y"}],
    });
    template.render(&fixed);
    if let Ok(context) = serde_json::from_slice::<Value>(context) {
        template.render_stack(&[&fixed, &context]);
        template.render(&context);
    }
    let partials = Bounded {
        templates: HashMap::from([
            ("p".to_owned(), template.clone()),
            (
                "q".to_owned(),
                Template::parse("{{#list}}\n  {{> p}}\n{{/list}}{{name}}").unwrap(),
            ),
        ]),
        lookups: Cell::new(0),
    };
    template.render_with_partials(&[&fixed], &partials);
});

/// Lookups after which [`Bounded`] finds no partial: a template that
/// includes itself twice doubles its work at every level, and the
/// renderer's limits (MAX_RENDER_STEPS) stop that only after millions of
/// steps, which would slow every such input down (a unit test,
/// `partials_that_multiply_stop_at_the_render_limits`, checks them).
const LOOKUPS: usize = 1000;

/// Partials that run out after [`LOOKUPS`] lookups.
struct Bounded {
    templates: HashMap<String, Template>,
    lookups: Cell<usize>,
}

impl Partials for Bounded {
    fn get(&self, name: &str) -> Option<&Template> {
        self.lookups.set(self.lookups.get() + 1);
        (self.lookups.get() <= LOOKUPS)
            .then(|| self.templates.get(name))
            .flatten()
    }
}
