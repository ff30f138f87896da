#!/bin/sh
# Validates Haendelsesbeskeder against KOMBIT's published schemas with
# xmllint: the envelope against Beskedkuvert.xsd, and its Beskeddata payload
# against SF1470 v6's SagBesked.xsd together with bro's extension
# (bro-sdi-udvidelse.xsd). KOMBIT's schemas are not in this repository (they
# carry no licence); fetch them first, see adapters/sdi/README.md.
#
#   adapters/sdi/schema/validate.sh KOMBIT_DIR FILE.xml...
#
# KOMBIT_DIR holds the two samples repositories' schema folders:
#   KOMBIT_DIR/beskedfordeler/Beskedkuvert.xsd (and its 1.1/, cached/)
#   KOMBIT_DIR/sf1470/6.0.STS-0/SagBesked.xsd (and ../common/)
set -eu
kombit=$(cd "$1" && pwd)
shift
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# One schema for the payload: SF1470's Sag (and document index) and bro's extension together.
cat > "$work/payload.xsd" <<XSD
<schema xmlns="http://www.w3.org/2001/XMLSchema" targetNamespace="urn:bro:sdi:validate">
  <import namespace="urn:oio:sagdok:3.0.0" schemaLocation="file://$kombit/sf1470/common/SagDokObjekt.xsd"/>
  <import namespace="urn:oio:sts:sagdok:sag:6" schemaLocation="file://$kombit/sf1470/6.0.STS-0/SagBesked.xsd"/>
  <import namespace="urn:oio:sts:sagdok:dokumentindeks:6" schemaLocation="file://$kombit/sf1470/6.0.STS-0/DokumentIndeks.xsd"/>
  <import namespace="urn:bro:sdi:udvidelse:1.0" schemaLocation="file://$here/bro-sdi-udvidelse.xsd"/>
</schema>
XSD
status=0
for file in "$@"; do
  # A pushed delivery's ModtagBeskedInput is declared with the operations; it imports Beskedkuvert.xsd.
  envelope="$kombit/beskedfordeler/Beskedkuvert.xsd"
  grep -q 'ModtagBeskedInput' "$file" && envelope="$kombit/beskedfordeler/AnvendersystemOperationer.xsd"
  xmllint --noout --schema "$envelope" "$file" || status=1
  # Each payload alone: the envelope's Beskeddata is xs:any, skipped by the schema above.
  count=$(xmllint --xpath "count(//*[local-name()='Beskeddata' and namespace-uri()='urn:oio:besked:kuvert:1.0']/*)" \
    "$file" 2>/dev/null) || count=0
  i=1
  while [ "$i" -le "$count" ]; do
    xmllint --xpath "(//*[local-name()='Beskeddata' and namespace-uri()='urn:oio:besked:kuvert:1.0']/*)[$i]" "$file" \
      > "$work/payload.xml"
    xmllint --noout --schema "$work/payload.xsd" "$work/payload.xml" >/dev/null 2>"$work/err" \
      && echo "$file: payload $i validates" \
      || { sed "s|$work/payload.xml|$file (payload $i)|" "$work/err"; status=1; }
    i=$((i + 1))
  done
done
exit $status
