//! What Hugging Face's chat-template runtime gives templates, on minijinja:
//! `trim_blocks`/`lstrip_blocks`, Python string and dict methods (pycompat),
//! `{% break %}`/`{% continue %}`, maps in insertion order (as Python's
//! dicts), `raise_exception`, `strftime_now`, a `tojson` that writes what Python's
//! `json.dumps` writes (no HTML escaping, `ensure_ascii`, `indent`,
//! `separators`, `sort_keys`), and `{% generation %}` blocks (a
//! training-only marker, rendered as their content).

use minijinja::value::{Kwargs, Value, ValueKind};
use minijinja::{Environment, Error, ErrorKind};
use std::time::{SystemTime, UNIX_EPOCH};

/// An environment with the chat template compiled under the name `chat`.
pub fn environment(source: &str) -> Result<Environment<'static>, Error> {
    let mut env = Environment::new();
    minijinja_contrib::add_to_environment(&mut env);
    env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
    // transformers renders with both on; templates are written for it.
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    env.add_function("raise_exception", |msg: String| -> Result<String, Error> {
        Err(Error::new(ErrorKind::InvalidOperation, msg))
    });
    env.add_function("strftime_now", |fmt: String| {
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        strftime(&fmt, secs)
    });
    env.add_filter("tojson", tojson);
    env.add_template_owned("chat", strip_generation_tags(source))?;
    Ok(env)
}

/// `{% generation %}` marks the assistant's trainable span; at inference
/// it is its content (minijinja has no such tag).
fn strip_generation_tags(src: &str) -> String {
    let mut out = String::with_capacity(src.len());
    let mut rest = src;
    while let Some(start) = rest.find("{%") {
        let Some(len) = rest[start..].find("%}") else {
            break;
        };
        let tag = &rest[start..start + len + 2];
        let word = tag
            .trim_start_matches("{%")
            .trim_end_matches("%}")
            .trim_matches(|c: char| c == '-' || c == '+' || c.is_whitespace());
        out.push_str(&rest[..start]);
        // Swapped for a no-op block so that whitespace control still applies.
        match word {
            "generation" => out.push_str(&tag.replacen("generation", "if true", 1)),
            "endgeneration" => out.push_str(&tag.replacen("endgeneration", "endif", 1)),
            _ => out.push_str(tag),
        }
        rest = &rest[start + len + 2..];
    }
    out.push_str(rest);
    out
}

thread_local! {
    /// Bytes one `tojson` may write during the current rendering (renders
    /// run on blocking-pool threads, one at a time per thread), and
    /// whether one hit it.
    static OUTPUT_LIMIT: std::cell::Cell<(usize, bool)> = const { std::cell::Cell::new((usize::MAX, false)) };
}

/// Runs a rendering with `tojson` output capped at `limit` bytes: a
/// template's `tojson(indent=4)` of deeply nested client JSON grew 8 MB
/// into gigabytes before anything else could see it.
pub fn with_output_limit<T>(limit: usize, render: impl FnOnce() -> T) -> T {
    let before = OUTPUT_LIMIT.replace((limit, false));
    let out = render();
    let (_, hit) = OUTPUT_LIMIT.get();
    OUTPUT_LIMIT.set((before.0, hit));
    out
}

/// Whether the last rendering on this thread hit the `tojson` cap.
pub fn output_limit_hit() -> bool {
    OUTPUT_LIMIT.get().1
}

fn over_limit(out: &str) -> Result<(), Error> {
    let (limit, _) = OUTPUT_LIMIT.get();
    if out.len() > limit {
        OUTPUT_LIMIT.set((limit, true));
        return Err(Error::new(
            ErrorKind::InvalidOperation,
            "tojson output is larger than the prompt may be",
        ));
    }
    Ok(())
}

/// Python's `json.dumps` as transformers calls it (`ensure_ascii=False` by default).
fn tojson(value: &Value, kwargs: Kwargs) -> Result<Value, Error> {
    let indent: Option<Value> = kwargs.get("indent")?;
    let indent = match indent {
        None => None,
        Some(v) if v.is_none() => None,
        Some(v) => Some(match v.as_str() {
            Some(s) => s.to_string(),
            None => " ".repeat(usize::try_from(v)?),
        }),
    };
    let ensure_ascii: Option<bool> = kwargs.get("ensure_ascii")?;
    let sort_keys: Option<bool> = kwargs.get("sort_keys")?;
    let separators: Option<Vec<String>> = kwargs.get("separators")?;
    kwargs.assert_all_used()?;
    let (item, key) = match separators.as_deref() {
        Some([a, b]) => (a.clone(), b.clone()),
        _ if indent.is_some() => (",".into(), ": ".into()),
        _ => (", ".into(), ": ".into()),
    };
    let opts = JsonOpts {
        indent,
        ensure_ascii: ensure_ascii.unwrap_or(false),
        sort_keys: sort_keys.unwrap_or(false),
        item,
        key,
    };
    let mut out = String::new();
    write_json(&mut out, value, &opts, 0)?;
    Ok(Value::from_safe_string(out))
}

struct JsonOpts {
    indent: Option<String>,
    ensure_ascii: bool,
    sort_keys: bool,
    item: String,
    key: String,
}

fn newline(out: &mut String, opts: &JsonOpts, depth: usize) {
    if let Some(ind) = &opts.indent {
        out.push('\n');
        for _ in 0..depth {
            out.push_str(ind);
        }
    }
}

fn write_json(out: &mut String, v: &Value, opts: &JsonOpts, depth: usize) -> Result<(), Error> {
    over_limit(out)?;
    match v.kind() {
        ValueKind::Undefined | ValueKind::None => out.push_str("null"),
        ValueKind::Bool => out.push_str(if v.is_true() { "true" } else { "false" }),
        ValueKind::Number if v.is_integer() => out.push_str(&v.to_string()),
        ValueKind::Number => {
            let f = f64::try_from(v.clone()).unwrap_or(f64::NAN);
            // Python writes 1.0, not 1.
            if f.fract() == 0.0 && f.is_finite() {
                out.push_str(&format!("{f:.1}"));
            } else {
                out.push_str(&f.to_string());
            }
        }
        ValueKind::String => write_str(out, v.as_str().unwrap_or_default(), opts.ensure_ascii),
        ValueKind::Seq | ValueKind::Iterable => {
            let items: Vec<Value> = v.try_iter()?.collect();
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(&opts.item);
                }
                newline(out, opts, depth + 1);
                write_json(out, item, opts, depth + 1)?;
            }
            if !items.is_empty() {
                newline(out, opts, depth);
            }
            out.push(']');
        }
        ValueKind::Map => {
            let mut keys: Vec<Value> = v.try_iter()?.collect();
            if opts.sort_keys {
                keys.sort();
            }
            out.push('{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push_str(&opts.item);
                }
                newline(out, opts, depth + 1);
                write_str(out, &k.to_string(), opts.ensure_ascii);
                out.push_str(&opts.key);
                write_json(out, &v.get_item(k)?, opts, depth + 1)?;
            }
            if !keys.is_empty() {
                newline(out, opts, depth);
            }
            out.push('}');
        }
        _ => write_str(out, &v.to_string(), opts.ensure_ascii),
    }
    Ok(())
}

fn write_str(out: &mut String, s: &str, ensure_ascii: bool) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || (ensure_ascii && !c.is_ascii()) => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

const DAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];
const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// Civil date (year, month 1-12, day 1-31) of days since 1970-01-01.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Days since 1970-01-01 of a civil date (the inverse of [`civil_from_days`]).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Python's `strftime` for the specifiers chat templates use, in UTC.
pub fn strftime(fmt: &str, unix_secs: i64) -> String {
    let days = unix_secs.div_euclid(86_400);
    let secs = unix_secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let weekday = (days + 3).rem_euclid(7) as usize; // 1970-01-01 was a Thursday
    let (month, day) = (MONTHS[m as usize - 1], DAYS[weekday]);
    let yday = days - days_from_civil(y, 1, 1) + 1;
    let mut out = String::new();
    let mut chars = fmt.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('Y') => out.push_str(&y.to_string()),
            Some('y') => out.push_str(&format!("{:02}", y.rem_euclid(100))),
            Some('m') => out.push_str(&format!("{m:02}")),
            Some('d') => out.push_str(&format!("{d:02}")),
            Some('-') => match chars.next() {
                Some('d') => out.push_str(&d.to_string()),
                Some('m') => out.push_str(&m.to_string()),
                Some(o) => out.extend(['%', '-', o]),
                None => out.push_str("%-"),
            },
            Some('B') => out.push_str(month),
            Some('b') => out.push_str(&month[..3]),
            Some('A') => out.push_str(day),
            Some('a') => out.push_str(&day[..3]),
            Some('H') => out.push_str(&format!("{:02}", secs / 3600)),
            Some('M') => out.push_str(&format!("{:02}", secs / 60 % 60)),
            Some('S') => out.push_str(&format!("{:02}", secs % 60)),
            Some('j') => out.push_str(&format!("{yday:03}")),
            Some('%') => out.push('%'),
            Some(o) => out.extend(['%', o]),
            None => out.push('%'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use minijinja::context;

    fn render(src: &str, ctx: Value) -> String {
        environment(src)
            .unwrap()
            .get_template("chat")
            .unwrap()
            .render(ctx)
            .unwrap()
    }

    #[test]
    fn strftime_matches_python() {
        // 2024-02-29 13:05:09 UTC, a Thursday.
        let t = 1_709_211_909;
        assert_eq!(strftime("%Y-%m-%d %H:%M:%S", t), "2024-02-29 13:05:09");
        assert_eq!(strftime("%d %b %Y", t), "29 Feb 2024");
        assert_eq!(strftime("%A %B %-d, %j", t), "Thursday February 29, 060");
        assert_eq!(strftime("%y%%", 0), "70%");
        assert_eq!(strftime("%a %d %B", 0), "Thu 01 January");
        // Day of the year across a leap day and on New Year's Eve.
        assert_eq!(strftime("%j", 1_709_251_200), "061"); // 2024-03-01
        assert_eq!(strftime("%Y-%m-%d %j", 1_735_603_200), "2024-12-31 366");
        for d in [-1000, 0, 59, 365, 11_016, 20_000] {
            let (y, m, day) = civil_from_days(d);
            assert_eq!(days_from_civil(y, m, day), d);
        }
    }

    #[test]
    fn tojson_writes_what_python_writes() {
        let v = serde_json::json!({"name": "f", "d": "é<b>", "n": [1, 2.5, 3.0], "z": null});
        let ctx = context! { v => Value::from_serialize(&v) };
        assert_eq!(
            render("{{ v | tojson }}", ctx.clone()),
            r#"{"name": "f", "d": "é<b>", "n": [1, 2.5, 3.0], "z": null}"#
        );
        assert_eq!(
            render("{{ v.n | tojson(indent=2) }}", ctx.clone()),
            "[\n  1,\n  2.5,\n  3.0\n]"
        );
        assert_eq!(
            render("{{ v.d | tojson(ensure_ascii=True) }}", ctx.clone()),
            r#""\u00e9<b>""#
        );
        assert_eq!(
            render("{{ v.n | tojson(separators=(',', ':')) }}", ctx),
            "[1,2.5,3.0]"
        );
    }

    #[test]
    fn generation_tags_render_their_content_and_blocks_are_trimmed() {
        let src =
            "{% for m in messages %}\n  {% generation %}{{ m }}{% endgeneration %}\n{% endfor %}";
        assert_eq!(render(src, context! { messages => vec!["a", "b"] }), "ab");
    }

    #[test]
    fn loop_controls_and_do_statements_compile() {
        let src = "{% for m in messages %}{% if m == 'stop' %}{% break %}{% endif %}{% if m == 'skip' %}{% continue %}{% endif %}{{ m }}{% endfor %}";
        let ctx = context! { messages => vec!["a", "skip", "b", "stop", "c"] };
        assert_eq!(render(src, ctx), "ab");
    }

    #[test]
    fn maps_keep_the_clients_key_order_as_python_dicts_do() {
        let v: serde_json::Value = serde_json::from_str(r#"{"z": 1, "a": 2}"#).unwrap();
        let ctx = context! { v => Value::from_serialize(&v) };
        assert_eq!(
            render("{{ v | tojson }}|{% for k in v %}{{ k }}{% endfor %}", ctx),
            r#"{"z": 1, "a": 2}|za"#
        );
    }

    #[test]
    fn python_methods_and_raise_exception() {
        let src = "{{ ' x '.strip() }}|{{ {'a': 1}.items() | list | length }}|{{ 'a,b'.split(',') | join('+') }}";
        assert_eq!(render(src, context! {}), "x|1|a+b");
        let env = environment("{{ raise_exception('user first') }}").unwrap();
        let err = env.get_template("chat").unwrap().render(context! {});
        assert!(err.unwrap_err().to_string().contains("user first"));
    }
}
