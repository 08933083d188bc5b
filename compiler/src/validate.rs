//! Validation of the small languages embedded in strings: cron schedules,
//! globs and environment variable names.

/// Checks a five-field cron expression (minute hour day-of-month month
/// day-of-week) with `*`, lists, ranges, steps and month/day names.
pub fn cron(s: &str) -> Result<(), String> {
    let fields: Vec<&str> = s.split_whitespace().collect();
    if fields.len() != 5 {
        return Err(format!(
            "a cron expression has 5 fields, this has {}",
            fields.len()
        ));
    }
    let limits: [(&str, u32, u32, &[&str]); 5] = [
        ("minute", 0, 59, &[]),
        ("hour", 0, 23, &[]),
        ("day of month", 1, 31, &[]),
        (
            "month",
            1,
            12,
            &[
                "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
            ],
        ),
        (
            "day of week",
            0,
            7,
            &["sun", "mon", "tue", "wed", "thu", "fri", "sat"],
        ),
    ];
    for (field, (what, lo, hi, names)) in fields.iter().zip(limits) {
        for part in field.split(',') {
            let (range, step) = match part.split_once('/') {
                Some((r, st)) => (r, Some(st)),
                None => (part, None),
            };
            if let Some(st) = step {
                match st.parse::<u32>() {
                    Ok(n) if n >= 1 && n <= hi => {}
                    _ => return Err(format!("`{st}` is not a valid step for the {what}")),
                }
            }
            if range == "*" {
                continue;
            }
            let value = |v: &str| -> Result<u32, String> {
                if let Some(i) = names.iter().position(|n| n.eq_ignore_ascii_case(v)) {
                    return Ok(i as u32 + lo);
                }
                match v.parse::<u32>() {
                    Ok(n) if (lo..=hi).contains(&n) => Ok(n),
                    _ => Err(format!("`{v}` is not a valid {what} ({lo}-{hi})")),
                }
            };
            match range.split_once('-') {
                Some((a, b)) => {
                    let (a, b) = (value(a)?, value(b)?);
                    if a > b {
                        return Err(format!("the {what} range `{range}` runs backwards"));
                    }
                }
                None => {
                    value(range)?;
                }
            }
        }
    }
    Ok(())
}

/// Checks that brackets and braces in a glob are balanced and not empty.
pub fn glob(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err("an empty pattern matches nothing".into());
    }
    let mut chars = s.chars().peekable();
    let mut braces = 0i32;
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                chars.next();
            }
            '[' => {
                let mut closed = false;
                for (n, d) in chars.by_ref().enumerate() {
                    if d == ']' && n > 0 {
                        closed = true;
                        break;
                    }
                }
                if !closed {
                    return Err("`[` is never closed".into());
                }
            }
            ']' => return Err("`]` without a matching `[`".into()),
            '{' => braces += 1,
            '}' => {
                braces -= 1;
                if braces < 0 {
                    return Err("`}` without a matching `{`".into());
                }
            }
            _ => {}
        }
    }
    if braces > 0 {
        return Err("`{` is never closed".into());
    }
    if s.contains("***") {
        return Err("`***` is not a pattern; use `**` for any depth".into());
    }
    Ok(())
}

/// Whether `s` is a portable environment variable name.
pub fn env_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}
