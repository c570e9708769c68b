//! Building the HTTP request a plugin returns.

use crate::{Answer, Method, Request, Result};

impl Request {
    /// A request with `method` to `url`, no headers, no body.
    pub fn new(method: Method, url: impl Into<String>) -> Self {
        Self {
            method,
            url: url.into(),
            headers: Vec::new(),
            body: Vec::new(),
            answer: Answer::Plugin,
        }
    }

    /// `GET url`.
    pub fn get(url: impl Into<String>) -> Self {
        Self::new(Method::Get, url)
    }

    /// `POST url`.
    pub fn post(url: impl Into<String>) -> Self {
        Self::new(Method::Post, url)
    }

    /// `PUT url`.
    pub fn put(url: impl Into<String>) -> Self {
        Self::new(Method::Put, url)
    }

    /// `PATCH url`.
    pub fn patch(url: impl Into<String>) -> Self {
        Self::new(Method::Patch, url)
    }

    /// `DELETE url`.
    pub fn delete(url: impl Into<String>) -> Self {
        Self::new(Method::Delete, url)
    }

    /// Adds a header (repeated names are kept).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets the body as is.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// Sets a JSON body and `content-type: application/json`.
    pub fn json(self, value: &impl serde::Serialize) -> Result<Self> {
        let body = serde_json::to_vec(value)?;
        Ok(self.header("content-type", "application/json").body(body))
    }

    /// Sets a form body (`application/x-www-form-urlencoded`).
    pub fn form<K: AsRef<str>, V: AsRef<str>>(
        self,
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        let body = encode(pairs);
        self.header("content-type", "application/x-www-form-urlencoded")
            .body(body)
    }

    /// Who answers the device once the request is done. The default,
    /// [`Answer::Plugin`], calls the plugin's
    /// [`on_response`](crate::Webhook::on_response); [`Answer::Default`]
    /// lets the host answer as the default `on_response` does, and
    /// [`Answer::None`] sends the device nothing but `hook-sent`. Either
    /// of those saves a call to the plugin per event.
    pub fn answer(mut self, answer: Answer) -> Self {
        self.answer = answer;
        self
    }

    /// Appends query parameters to the URL, percent-encoded.
    pub fn query<K: AsRef<str>, V: AsRef<str>>(
        mut self,
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        let query = encode(pairs);
        if !query.is_empty() {
            let separator = if self.url.contains('?') { '&' } else { '?' };
            self.url.push(separator);
            self.url.push_str(&query);
        }
        self
    }
}

fn encode<K: AsRef<str>, V: AsRef<str>>(pairs: impl IntoIterator<Item = (K, V)>) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

#[cfg(test)]
mod tests {
    use crate::{Answer, Method, Request};

    #[test]
    fn builds_form_json_and_query_requests() {
        let r = Request::post("https://x.test/in").form([("api key", "a&b"), ("field1", "21.5")]);
        assert_eq!(r.body, b"api+key=a%26b&field1=21.5");
        assert_eq!(
            r.headers,
            [(
                "content-type".to_owned(),
                "application/x-www-form-urlencoded".to_owned()
            )]
        );

        let r = Request::put("https://x.test/in")
            .json(&serde_json::json!({"a": 1}))
            .unwrap();
        assert!(matches!(r.method, Method::Put));
        assert_eq!(r.body, br#"{"a":1}"#);

        let r = Request::get("https://x.test/q?x=1")
            .query([("t", "a b")])
            .query(Vec::<(&str, &str)>::new());
        assert_eq!(r.url, "https://x.test/q?x=1&t=a+b");
        assert_eq!(r.answer, Answer::Plugin);
        assert_eq!(r.answer(Answer::None).answer, Answer::None);
    }
}
