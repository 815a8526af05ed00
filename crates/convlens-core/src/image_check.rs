//! What a dropped file is before anyone decodes it, so each kind of bad photo gets its own
//! message: not an image at all, an image cut short, or one too small to mean anything.

/// Below this many pixels a side a photo carries nothing a 224-px network can use.
pub const MIN_SIDE: usize = 16;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    /// An image format (its name), complete as far as its end marker shows.
    Image(&'static str),
    /// An image format whose data stops before its end marker.
    Truncated(&'static str),
    /// Not an image format browsers read.
    NotImage,
}

/// The format from the file's first bytes (the image crate's signatures), and whether it ends
/// where the format says it must (JPEG: the EOI marker; PNG: the IEND chunk).
pub fn sniff(bytes: &[u8]) -> FileKind {
    sniff_ends(bytes, bytes)
}

/// How many bytes of each end `sniff_ends` looks at.
pub const END_BYTES: usize = 64;

/// `sniff` from the file's two ends only (at least its first and last `END_BYTES`, or the
/// whole file as both): a browser need not read a phone's 5 MB photo into memory to say what
/// it is.
pub fn sniff_ends(head: &[u8], tail: &[u8]) -> FileKind {
    use image::ImageFormat as F;
    let name = match image::guess_format(head) {
        Ok(F::Png) => "PNG",
        Ok(F::Jpeg) => "JPEG",
        Ok(F::Gif) => "GIF",
        Ok(F::WebP) => "WebP",
        Ok(F::Bmp) => "BMP",
        Ok(F::Avif) => "AVIF",
        Ok(F::Ico) => "ICO",
        Ok(F::Tiff) => "TIFF",
        _ => return FileKind::NotImage,
    };
    // Encoders may pad after the end marker: look for it near the end, not at the last byte.
    let tail = &tail[tail.len().saturating_sub(END_BYTES)..];
    let ends = match name {
        "JPEG" => tail.windows(2).any(|w| w == [0xFF, 0xD9]),
        "PNG" => tail.windows(4).any(|w| w == b"IEND"),
        _ => true,
    };
    if ends {
        FileKind::Image(name)
    } else {
        FileKind::Truncated(name)
    }
}

/// A sentence for a file that cannot be used as it is, or None where it can.
pub fn problem(file: &str, kind: FileKind) -> Option<String> {
    match kind {
        FileKind::Image(_) => None,
        FileKind::Truncated(f) => Some(format!("{file} is a {f} that stops early (truncated or damaged download): the missing part would show as grey; open the complete file.")),
        FileKind::NotImage => Some(format!("{file} is not an image: open a PNG, JPEG, WebP, GIF or BMP photo, or an .onnx model.")),
    }
}

/// A sentence for a decoded image too small to classify, or None.
pub fn too_small(file: &str, width: usize, height: usize) -> Option<String> {
    (width < MIN_SIDE || height < MIN_SIDE).then(|| {
        format!("{file} is {width}x{height} px: too small to mean anything to the network, which looks at 224x224 (use a photo at least {MIN_SIDE} px a side).")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_of_file() {
        let png = std::fs::read(convlens_testkit::shared_images().join("chelsea.png")).unwrap();
        assert_eq!(sniff(&png), FileKind::Image("PNG"));
        assert_eq!(sniff(&png[..png.len() / 2]), FileKind::Truncated("PNG"));
        let jpeg = [&[0xFF, 0xD8, 0xFF, 0xE0][..], &[0u8; 100], &[0xFF, 0xD9]].concat();
        assert_eq!(sniff(&jpeg), FileKind::Image("JPEG"));
        assert_eq!(sniff(&jpeg[..80]), FileKind::Truncated("JPEG"));
        assert_eq!(sniff(b"%PDF-1.7 not a photo"), FileKind::NotImage);
        assert_eq!(sniff(b""), FileKind::NotImage);
        assert!(problem("a.png", sniff(&png)).is_none());
        assert!(problem("x.pdf", FileKind::NotImage).unwrap().contains("not an image"));
        assert!(too_small("dot.png", 1, 1).unwrap().contains("1x1 px"));
        assert!(too_small("ok.png", 224, 16).is_none());
    }
}
