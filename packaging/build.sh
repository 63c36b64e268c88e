#!/bin/sh
# Builds retcd's packages: target/packages/retcd_<version>_<arch>.deb and
# retcd-<version>.<arch>.rpm, from release binaries (RETCD_PROFILE=dev packages the debug
# build instead, as CI does to stay within its time). Needs dpkg-deb, and rpmbuild (Debian's
# `rpm` package) for the .rpm; scripts/deps.sh --package installs them.
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
profile=${RETCD_PROFILE:-release}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$( [ -w /var/cache ] && echo /var/cache/retcd-target || echo "$here/target")}
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
debarch=$(dpkg --print-architecture 2>/dev/null || echo amd64)
rpmarch=$(uname -m)
if [ "$profile" = release ]; then
    cargo build --release --workspace --bins
    bindir="$CARGO_TARGET_DIR/release"
else
    cargo build --workspace --bins
    bindir="$CARGO_TARGET_DIR/debug"
fi
out="$here/target/packages"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$out"

# The file tree both packages install.
root="$work/root"
install -d "$root/usr/bin" "$root/lib/systemd/system" "$root/etc/etcd" \
    "$root/usr/share/doc/retcd" "$root/usr/share/man/man1"
for b in etcd etcdctl etcdutl etcd-backup; do
    install -m 0755 "$bindir/$b" "$root/usr/bin/$b"
    strip --strip-unneeded "$root/usr/bin/$b" 2>/dev/null || true
done
for u in etcd.service etcd-backup.service etcd-backup.timer; do
    install -m 0644 "systemd/$u" "$root/lib/systemd/system/$u"
done
install -m 0644 conf/etcd.conf "$root/etc/etcd/etcd.conf"
# May hold S3 credentials: root and group etcd only (the group is set at install).
install -m 0640 conf/backup.conf "$root/etc/etcd/backup.conf"
install -m 0644 packaging/debian/copyright "$root/usr/share/doc/retcd/copyright"
install -m 0644 README.md "$root/usr/share/doc/retcd/README.md"
install -m 0644 docs/disaster-recovery.md "$root/usr/share/doc/retcd/disaster-recovery.md"
install -m 0644 docs/backup.md "$root/usr/share/doc/retcd/backup.md"
install -m 0644 docs/migrating-from-etcd.md "$root/usr/share/doc/retcd/migrating-from-etcd.md"
install -m 0644 conf/etcd.yaml "$root/usr/share/doc/retcd/etcd.yaml.example"
install -m 0644 conf/etcd-backup.cron "$root/usr/share/doc/retcd/etcd-backup.cron.example"
gzip -9n -c packaging/debian/changelog > "$root/usr/share/doc/retcd/changelog.Debian.gz"
for b in etcd etcdctl etcdutl etcd-backup; do
    packaging/manpage.sh "$b" "$root/usr/bin/$b" "$version" | gzip -9n > "$root/usr/share/man/man1/$b.1.gz"
done

# .deb
deb="$work/deb"
cp -a "$root" "$deb"
install -d "$deb/DEBIAN" "$deb/usr/share/lintian/overrides"
install -m 0644 packaging/debian/lintian-overrides "$deb/usr/share/lintian/overrides/retcd"
size=$(du -sk "$deb" | cut -f1)
sed -e "s/@VERSION@/$version-1/" -e "s/@ARCH@/$debarch/" -e "s/@SIZE@/$size/" \
    packaging/debian/control > "$deb/DEBIAN/control"
install -m 0644 packaging/debian/conffiles "$deb/DEBIAN/conffiles"
for s in postinst prerm postrm; do
    install -m 0755 "packaging/debian/$s" "$deb/DEBIAN/$s"
done
(cd "$deb" && find . -type f ! -path './DEBIAN/*' -printf '%P\0' | sort -z | xargs -0 md5sum) > "$deb/DEBIAN/md5sums"
chmod 0644 "$deb/DEBIAN/md5sums"
dpkg-deb --root-owner-group -Zxz --build "$deb" "$out/retcd_${version}-1_${debarch}.deb" >/dev/null
echo "built $out/retcd_${version}-1_${debarch}.deb"

# .rpm
if command -v rpmbuild >/dev/null; then
    top="$work/rpmbuild"
    mkdir -p "$top/SPECS" "$top/RPMS"
    sed -e "s/@VERSION@/$version/" packaging/rpm/retcd.spec > "$top/SPECS/retcd.spec"
    rpmbuild -bb --quiet --define "_topdir $top" --define "retcd_root $root" \
        --define "_build_id_links none" --define "__os_install_post %{nil}" --target "$rpmarch" "$top/SPECS/retcd.spec"
    cp "$top/RPMS/$rpmarch/retcd-$version-1.$rpmarch.rpm" "$out/retcd-$version.$rpmarch.rpm"
    echo "built $out/retcd-$version.$rpmarch.rpm"
else
    echo "rpmbuild not found: no .rpm (apt-get install rpm)" >&2
fi
