#!/usr/bin/env python3
"""Upload or download one file with boto3 the way OSMO's data CLI does, and print one
JSON line: {"seconds", "bytes", "files", "cpu_user", "cpu_sys"} measured in this process.

The comparison point for sidewire's S3 transfer engine. Settings mirror upstream's
src/lib/data/storage/backends/s3.py: TransferConfig(multipart_threshold=512 MiB,
max_concurrency=5) with the default 8 MiB part size, a client with standard retries
(3 attempts) and 160 pooled connections; uploads with
upload_file(ExtraArgs={'ContentType': ...}, Callback=...), downloads with
download_fileobj into an open file. Upstream uses virtual-hosted addressing for custom
endpoints; this defaults to path style (the test server has no DNS names). Checksums
follow botocore's own defaults unless --checksums when_required asks for upstream's
setting (current botocore computes a CRC32 of every upload itself). --ca-bundle trusts a
private CA for https:// endpoints.

--mode download-prefix takes --key as a prefix and --file as a folder: it lists the
prefix with the ListObjectsV2 paginator and downloads every object into the folder
through one TransferManager with the same TransferConfig (max_concurrency=5: five
objects in flight), each to its path as download_file does.

  python3 benches/boto3_transfer.py --endpoint URL --bucket B --key K --file PATH \
      --mode upload|download|download-prefix --access-key AK --secret SK [--ca-bundle PEM]
Install boto3 with scripts/bench-deps.
"""

import argparse
import json
import mimetypes
import os
import resource
import time

import boto3
import boto3.s3.transfer
import botocore.config

MIB = 1024 * 1024
# Upstream's defaults (OSMO_S3_MULTIPART_THRESHOLD_BYTES, OSMO_S3_MAX_CONCURRENCY).
MULTIPART_THRESHOLD = int(os.getenv('OSMO_S3_MULTIPART_THRESHOLD_BYTES', str(512 * MIB)))
MAX_CONCURRENCY = int(os.getenv('OSMO_S3_MAX_CONCURRENCY', '5'))


def make_client(args):
    checksums = {}
    if args.checksums:
        checksums = {'request_checksum_calculation': args.checksums,
                     'response_checksum_validation': args.checksums}
    config = botocore.config.Config(
        retries={'max_attempts': 3, 'mode': 'standard'},
        max_pool_connections=160,
        s3={'addressing_style': args.addressing_style},
        **checksums,
    )
    return boto3.session.Session().client(
        's3',
        endpoint_url=args.endpoint,
        aws_access_key_id=args.access_key,
        aws_secret_access_key=args.secret,
        region_name=args.region,
        config=config,
        verify=args.ca_bundle or None,
    )


def transfer_config():
    return boto3.s3.transfer.TransferConfig(
        multipart_threshold=MULTIPART_THRESHOLD,
        max_concurrency=MAX_CONCURRENCY,
    )


def download_prefix(s3, bucket, prefix, folder, progress):
    """Every object under `prefix` into `folder` (its key less the prefix); the count."""
    manager = boto3.s3.transfer.create_transfer_manager(s3, transfer_config())
    transfers = []
    with manager:
        paginator = s3.get_paginator('list_objects_v2')
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get('Contents', []):
                path = os.path.join(folder, obj['Key'][len(prefix):].lstrip('/'))
                os.makedirs(os.path.dirname(path), exist_ok=True)
                transfers.append(manager.download(
                    bucket, obj['Key'], path,
                    subscribers=[boto3.s3.transfer.ProgressCallbackInvoker(progress)]))
    # Leaving the manager waited for every transfer; result() raises a failed one's error.
    for transfer in transfers:
        transfer.result()
    return len(transfers)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--endpoint', required=True)
    parser.add_argument('--bucket', required=True)
    parser.add_argument('--key', required=True)
    parser.add_argument('--file', required=True)
    parser.add_argument('--mode', choices=['upload', 'download', 'download-prefix'], required=True)
    parser.add_argument('--access-key', required=True)
    parser.add_argument('--secret', required=True)
    parser.add_argument('--region', default='us-east-1')
    parser.add_argument('--addressing-style', default='path',
                        choices=['path', 'virtual', 'auto'])
    parser.add_argument('--ca-bundle', default='')
    parser.add_argument('--checksums', default='',
                        choices=['', 'when_supported', 'when_required'])
    args = parser.parse_args()

    s3 = make_client(args)
    moved = 0

    def progress(n):
        nonlocal moved
        moved += n

    usage_before = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    files = 1
    if args.mode == 'download-prefix':
        files = download_prefix(s3, args.bucket, args.key, args.file, progress)
    elif args.mode == 'upload':
        content_type = mimetypes.guess_type(args.file)[0] or 'application/octet-stream'
        s3.upload_file(Filename=args.file, Bucket=args.bucket, Key=args.key,
                       ExtraArgs={'ContentType': content_type},
                       Callback=progress, Config=transfer_config())
    else:
        with open(args.file, 'wb') as f:
            s3.download_fileobj(Bucket=args.bucket, Key=args.key, Fileobj=f,
                                Callback=progress, Config=transfer_config())
    seconds = time.perf_counter() - start
    usage_after = resource.getrusage(resource.RUSAGE_SELF)

    print(json.dumps({
        'seconds': round(seconds, 4),
        'bytes': moved,
        'files': files,
        'cpu_user': round(usage_after.ru_utime - usage_before.ru_utime, 4),
        'cpu_sys': round(usage_after.ru_stime - usage_before.ru_stime, 4),
    }))


if __name__ == '__main__':
    main()
