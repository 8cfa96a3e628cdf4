//! Escaping for the one page the hub writes by hand, the API's `/docs` (it renders the OpenAPI
//! document, not user data). The console's pages are maud templates and SellerCenter's XML is
//! quick-xml's, which escape by themselves.

/// Escapes text for element content and quoted attribute values (HTML and XML alike).
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn markup_escape_leaves_no_character_that_opens_markup_or_ends_a_quote() {
        assert_eq!(
            super::escape("<a href='x' title=\"y\">&</a>"),
            "&lt;a href=&#39;x&#39; title=&quot;y&quot;&gt;&amp;&lt;/a&gt;"
        );
    }
}
