//! A small English tokenizer for reviews.

/// Lower-cases `text`, turns the HTML line breaks of IMDB reviews (`<br />`) into spaces
/// and splits it into words: runs of letters, digits and inner apostrophes
/// (`don't` stays one token); everything else separates.
///
/// ```
/// use attnkit_text::tokenize;
/// assert_eq!(tokenize("Great film!<br /><br />Don't miss it."),
///            ["great", "film", "don't", "miss", "it"]);
/// ```
pub fn tokenize(text: &str) -> Vec<String> {
    let text = text
        .replace("<br />", " ")
        .replace("<br/>", " ")
        .to_lowercase();
    let mut tokens = Vec::new();
    let mut current = String::new();
    for ch in text.chars() {
        if ch.is_alphanumeric() || (ch == '\'' && !current.is_empty()) {
            current.push(ch);
        } else if !current.is_empty() {
            tokens.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        tokens.push(current);
    }
    for t in tokens.iter_mut() {
        while t.ends_with('\'') {
            t.pop();
        }
    }
    tokens.retain(|t| !t.is_empty());
    tokens
}
