<?php
return [
    'db' => [
        'connection' => [
            'default' => [
                'host' => getenv('DB_HOST'),
            ],
        ],
    ],
];
