//! Files only this user may read: the local server's database (sessions,
//! with their personal data), its master key and its development
//! credentials, and the directory they are kept in.

use std::io;
use std::path::Path;

/// Creates `dir` and its missing parents, each `0700`. A directory that
/// exists is left as it is: it may be shared on purpose (`/tmp`, a home),
/// and its files are private anyway.
pub fn create_dir_all(dir: &Path) -> io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Creates `path` empty and `0600` if it does not exist; one that does is
/// made `0600` too (files written by earlier versions were world-readable).
pub fn create_file(path: &Path) -> io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.append(true).create(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?;
    restrict(path)
}

/// Makes an existing file `0600`; nothing if it does not exist.
pub fn restrict(path: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        match std::fs::metadata(path) {
            Ok(meta) if meta.permissions().mode() & 0o777 != 0o600 => {
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            }
            Ok(_) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        Ok(())
    }
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn directories_and_files_are_created_private_and_loose_files_tightened() {
        let root = std::env::temp_dir().join(format!("korala-private-{}", uuid::Uuid::now_v7().simple()));
        let dir = root.join("a").join("b");
        create_dir_all(&dir).unwrap();
        assert_eq!((mode(&root.join("a")), mode(&dir)), (0o700, 0o700));

        let file = dir.join("new");
        create_file(&file).unwrap();
        assert_eq!(mode(&file), 0o600);

        let loose = dir.join("loose");
        std::fs::write(&loose, "kept").unwrap();
        std::fs::set_permissions(&loose, std::fs::Permissions::from_mode(0o644)).unwrap();
        create_file(&loose).unwrap();
        assert_eq!(mode(&loose), 0o600);
        assert_eq!(std::fs::read_to_string(&loose).unwrap(), "kept", "not truncated");

        restrict(&dir.join("absent")).unwrap();
        // An existing directory keeps its mode.
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        create_dir_all(&dir).unwrap();
        assert_eq!(mode(&dir), 0o755);
        std::fs::remove_dir_all(&root).unwrap();
    }
}
