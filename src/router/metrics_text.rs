//! Prometheus text from several runners as one exposition: a `model` label
//! on every sample, and each family's HELP, TYPE and samples together (the
//! format allows a family only once).

/// `parts`: (model id, that runner's text); an empty id adds no label.
pub fn merge(parts: &[(String, String)]) -> String {
    // family -> (HELP/TYPE lines, samples), in first-seen order.
    let mut families: Vec<(String, Vec<String>, Vec<String>)> = Vec::new();
    for (model, text) in parts {
        let mut current = String::new();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            if let Some(rest) = line
                .strip_prefix("# HELP ")
                .or(line.strip_prefix("# TYPE "))
            {
                current = rest
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_string();
                let f = family(&mut families, &current);
                if !f.1.iter().any(|l| l == line) {
                    f.1.push(line.to_string());
                }
            } else if !line.starts_with('#') {
                let name = line.split(['{', ' ']).next().unwrap_or_default();
                let key = if current.is_empty() || !name.starts_with(current.as_str()) {
                    name.to_string()
                } else {
                    current.clone()
                };
                family(&mut families, &key).2.push(labelled(line, model));
            }
        }
    }
    let mut out = String::new();
    for (_, meta, samples) in families {
        for l in meta.iter().chain(&samples) {
            out.push_str(l);
            out.push('\n');
        }
    }
    out
}

fn family<'a>(
    families: &'a mut Vec<(String, Vec<String>, Vec<String>)>,
    name: &str,
) -> &'a mut (String, Vec<String>, Vec<String>) {
    let i = match families.iter().position(|f| f.0 == name) {
        Some(i) => i,
        None => {
            families.push((name.to_string(), Vec::new(), Vec::new()));
            families.len() - 1
        }
    };
    &mut families[i]
}

/// `name{a="b"} 1` with `model="m"` first among its labels.
fn labelled(line: &str, model: &str) -> String {
    if model.is_empty() {
        return line.to_string();
    }
    let label = format!("model=\"{}\"", escape(model));
    match line.find(['{', ' ']) {
        Some(i) if line[i..].starts_with("{}") => {
            format!("{}{{{label}}}{}", &line[..i], &line[i + 2..])
        }
        Some(i) if line[i..].starts_with('{') => {
            format!("{}{{{label},{}", &line[..i], &line[i + 1..])
        }
        Some(i) => format!("{}{{{label}}}{}", &line[..i], &line[i..]),
        None => line.to_string(),
    }
}

/// A label value as the text format writes it.
pub fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_stay_together_and_every_sample_names_its_model() {
        let a = "# HELP t_req Requests.\n# TYPE t_req counter\nt_req{route=\"/x\"} 3\n# TYPE t_q gauge\nt_q 1\n";
        let b = "# HELP t_req Requests.\n# TYPE t_req counter\nt_req{route=\"/x\"} 5\n# TYPE t_q gauge\nt_q 0\n";
        let own = "# TYPE r gauge\nr{model=\"a\"} 1\n";
        let parts = [
            ("".into(), own.into()),
            ("a".into(), a.into()),
            ("b\"c".into(), b.into()),
        ];
        assert_eq!(
            merge(&parts),
            "# TYPE r gauge\nr{model=\"a\"} 1\n\
             # HELP t_req Requests.\n# TYPE t_req counter\n\
             t_req{model=\"a\",route=\"/x\"} 3\nt_req{model=\"b\\\"c\",route=\"/x\"} 5\n\
             # TYPE t_q gauge\nt_q{model=\"a\"} 1\nt_q{model=\"b\\\"c\"} 0\n"
        );
    }

    #[test]
    fn histogram_series_stay_in_their_family() {
        let a = "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum 2\nh_count 1\n";
        let merged = merge(&[("a".into(), a.into()), ("b".into(), a.into())]);
        let lines: Vec<&str> = merged.lines().collect();
        assert_eq!(lines.len(), 7);
        assert_eq!(lines[4], "h_bucket{model=\"b\",le=\"1\"} 1");
        assert_eq!(lines[6], "h_count{model=\"b\"} 1");
    }
}
