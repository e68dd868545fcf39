//! Full image references (`registry/name:tag`) for the release: platform images are tagged
//! with the platform ref, customer images with the customer repository's commit.

use serde::Serialize;

/// Where an image is built from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ImageSource {
    /// The platform repository at `platform.ref`.
    Platform,
    /// The customer repository at its commit.
    Customer,
}

/// The image set: names per source and the registry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageSet {
    /// Registry prefix (`host/namespace`), may be empty.
    pub registry: String,
    /// Images built from the platform repository.
    pub platform: Vec<String>,
    /// Images built from the customer repository.
    pub customer: Vec<String>,
}

/// One image to build.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Image {
    /// Short name (`kdcube-chat-proc`).
    pub name: String,
    /// `registry/name:tag`.
    pub image: String,
    /// `registry/name`.
    pub repository: String,
    /// The tag.
    pub tag: String,
    /// Where it is built from.
    pub source: ImageSource,
    /// The git ref it is built at.
    #[serde(rename = "ref")]
    pub git_ref: String,
}

/// An image set that cannot be tagged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImageError {
    /// A tag is not a valid Docker tag.
    #[error("`{tag}` is not a valid image tag for {source_name} images")]
    InvalidTag {
        tag: String,
        /// `platform` or `customer`.
        source_name: &'static str,
    },
    /// A name is not a valid image name.
    #[error("`{name}` is not a valid image name")]
    InvalidName { name: String },
    /// Customer images need the customer commit.
    #[error("customer images need the customer repository's commit")]
    MissingCustomerSha,
    /// An image is listed twice.
    #[error("image `{name}` is listed twice")]
    Duplicate { name: String },
}

/// `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}` (the Docker tag grammar).
pub(crate) fn is_valid_tag(tag: &str) -> bool {
    let mut chars = tag.chars();
    tag.len() <= 128
        && matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.split('/').all(|part| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c))
                && part.starts_with(|c: char| c.is_ascii_alphanumeric())
        })
}

/// The images of a release.
pub(crate) fn images(
    set: &ImageSet,
    platform_ref: &str,
    customer_sha: Option<&str>,
) -> Result<Vec<Image>, ImageError> {
    let registry = set.registry.trim_end_matches('/');
    let mut list: Vec<Image> = Vec::new();
    let sources = [
        (ImageSource::Platform, &set.platform, Some(platform_ref)),
        (ImageSource::Customer, &set.customer, customer_sha),
    ];
    for (source, names, tag) in sources {
        if names.is_empty() {
            continue;
        }
        let source_name = match source {
            ImageSource::Platform => "platform",
            ImageSource::Customer => "customer",
        };
        let tag = tag.ok_or(ImageError::MissingCustomerSha)?;
        if !is_valid_tag(tag) {
            return Err(ImageError::InvalidTag {
                tag: tag.to_owned(),
                source_name,
            });
        }
        for name in names {
            if !is_valid_name(name) {
                return Err(ImageError::InvalidName { name: name.clone() });
            }
            if list.iter().any(|image| &image.name == name) {
                return Err(ImageError::Duplicate { name: name.clone() });
            }
            let repository = if registry.is_empty() {
                name.clone()
            } else {
                format!("{registry}/{name}")
            };
            list.push(Image {
                name: name.clone(),
                image: format!("{repository}:{tag}"),
                repository,
                tag: tag.to_owned(),
                source,
                git_ref: tag.to_owned(),
            });
        }
    }
    Ok(list)
}

/// `{"name": "registry/name:tag", ...}`
pub(crate) fn references(images: &[Image]) -> serde_json::Value {
    serde_json::Value::Object(
        images
            .iter()
            .map(|image| {
                (
                    image.name.clone(),
                    serde_json::Value::String(image.image.clone()),
                )
            })
            .collect(),
    )
}

/// A `strategy.matrix` value: `{"include": [image, ...]}`.
pub(crate) fn matrix(images: &[Image]) -> serde_json::Value {
    serde_json::json!({ "include": images })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set() -> ImageSet {
        ImageSet {
            registry: "123.dkr.ecr.eu-west-1.amazonaws.com/acme/".into(),
            platform: vec!["kdcube-chat-proc".into(), "kdcube-metrics".into()],
            customer: vec!["kdcube-web-ui".into()],
        }
    }

    #[test]
    fn platform_images_take_the_platform_ref_and_customer_images_the_sha() {
        let list = images(&set(), "v0.3.2", Some("0123abc")).expect("valid");
        assert_eq!(
            references(&list),
            serde_json::json!({
                "kdcube-chat-proc": "123.dkr.ecr.eu-west-1.amazonaws.com/acme/kdcube-chat-proc:v0.3.2",
                "kdcube-metrics": "123.dkr.ecr.eu-west-1.amazonaws.com/acme/kdcube-metrics:v0.3.2",
                "kdcube-web-ui": "123.dkr.ecr.eu-west-1.amazonaws.com/acme/kdcube-web-ui:0123abc"
            })
        );
        let matrix = matrix(&list);
        assert_eq!(matrix["include"][2]["source"], "customer");
        assert_eq!(matrix["include"][0]["tag"], "v0.3.2");
    }

    #[test]
    fn refuses_what_docker_would_refuse() {
        assert_eq!(
            images(&set(), "release/1.0", Some("abc")),
            Err(ImageError::InvalidTag {
                tag: "release/1.0".into(),
                source_name: "platform"
            })
        );
        assert_eq!(
            images(&set(), "v1", None),
            Err(ImageError::MissingCustomerSha)
        );
        let mut bad = set();
        bad.platform.push("Upper".into());
        assert!(matches!(
            images(&bad, "v1", Some("a")),
            Err(ImageError::InvalidName { .. })
        ));
        let mut twice = set();
        twice.customer.push("kdcube-metrics".into());
        assert!(matches!(
            images(&twice, "v1", Some("a")),
            Err(ImageError::Duplicate { .. })
        ));
    }
}
